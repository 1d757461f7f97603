using System.Text.Json;
using ReviewerPortal.Client.Agents;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Tests.Client;

/// <summary>
/// The .NET client computes the job hash on its own (it cannot depend on the server) to check that what was approved
/// is what it runs: both computations must agree on every payload, or an approved call would never run.
/// </summary>
public sealed class ClientJobHashTests
{
    [Theory]
    [InlineData("""{"amount":420,"invoice":"INV-7"}""", null)]
    [InlineData("""{"z":{"b":[3,2,1],"a":null},"a":true,"m":1.50,"e":1e3}""", "mcp")]
    [InlineData("""{"note":"<script>é\u202E漢字</script>","nested":{"deep":[{"y":1,"x":2}]}}""", "slack")]
    [InlineData("""[1,"two",{"three":3}]""", null)]
    public void The_client_hash_is_the_servers_hash(string payload, string? channel)
    {
        var json = JsonDocument.Parse(payload).RootElement;
        var server = JobHasher.Hash("acme", new JobRequest("finance.payment.execute", "production", channel, "high", json));
        var client = ClientJobHash.Compute("acme", "finance.payment.execute", "production", channel, json);
        Assert.Equal(server, client);
        Assert.NotEqual(server, ClientJobHash.Compute("globex", "finance.payment.execute", "production", channel, json));
    }
}
