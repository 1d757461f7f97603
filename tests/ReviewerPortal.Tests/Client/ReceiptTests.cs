using System.Net;
using ReviewerPortal.Client;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Client;

/// <summary>Signed approval receipts, verified offline with the tenant's public keys.</summary>
public sealed class ReceiptTests : IAsyncLifetime
{
    private TestApp _app = null!;

    public async Task InitializeAsync() => _app = await TestApp.StartAsync(kestrel: true);

    public async Task DisposeAsync() => await _app.DisposeAsync();

    private ReviewerPortalClient Client(string token) => new(new Uri(_app.BaseUrl), token);

    private async Task<(SubmitResult Submitted, DecisionResult Decision)> ApprovedAsync(int n)
    {
        await using var agent = Client("demo-acme-agent");
        var submitted = await agent.SubmitAsync(new JobSubmission("finance.payment.execute", "production", new { amount = n }));
        await using var alice = Client("demo-alice-token");
        return (submitted, await alice.ApproveAsync(submitted.ApprovalId!, "ok"));
    }

    [Fact]
    public async Task Receipt_of_an_approval_verifies_offline_for_that_job_only()
    {
        var (submitted, decision) = await ApprovedAsync(1);
        await using var anonymous = Client("no-credentials-needed");
        var keys = await anonymous.GetPublicKeysAsync("acme");

        Assert.NotNull(decision.Receipt);
        Assert.True(ReceiptVerifier.Verify(decision.Receipt, keys, submitted.JobHash!, DateTimeOffset.UtcNow, out var claims, out var reason), reason);
        Assert.Equal(submitted.ApprovalId, claims!.ApprovalId);
        Assert.Equal(["alice"], claims.Deciders);
        Assert.False(ReceiptVerifier.Verify(decision.Receipt, keys, new string('0', 64), DateTimeOffset.UtcNow, out _, out reason));
        Assert.Equal("a different job", reason);
        Assert.False(ReceiptVerifier.Verify(decision.Receipt, keys, submitted.JobHash!, DateTimeOffset.UtcNow.AddDays(2), out _, out reason));
        Assert.Equal("expired", reason);
    }

    [Fact]
    public async Task Tampered_receipt_fails_verification()
    {
        var (submitted, decision) = await ApprovedAsync(2);
        await using var agent = Client("demo-acme-agent");
        var keys = await agent.GetPublicKeysAsync("acme");
        var receipt = await agent.GetReceiptAsync(submitted.ApprovalId!);

        var forgedJob = receipt with { Payload = receipt.Payload.Replace(submitted.JobHash!, new string('a', 64)) };
        var otherSignature = receipt with { Signature = decision.Receipt!.Signature[..^4] + "AAAA" };

        Assert.True(ReceiptVerifier.Verify(receipt, keys, submitted.JobHash!, DateTimeOffset.UtcNow, out _, out _));
        Assert.False(ReceiptVerifier.Verify(forgedJob, keys, new string('a', 64), DateTimeOffset.UtcNow, out _, out var reason));
        Assert.Equal("bad signature", reason);
        Assert.False(ReceiptVerifier.Verify(otherSignature, keys, submitted.JobHash!, DateTimeOffset.UtcNow, out _, out _));
    }

    [Fact]
    public async Task After_rotation_old_receipts_still_verify_and_new_ones_use_the_new_key()
    {
        var (oldSubmitted, oldDecision) = await ApprovedAsync(3);
        var rotate = await _app.Account("ada").PostAsync("/api/v1/tenants/acme/keys/rotate", null);
        Assert.Equal(HttpStatusCode.OK, rotate.StatusCode);
        var (newSubmitted, newDecision) = await ApprovedAsync(4);
        await using var agent = Client("demo-acme-agent");
        var keys = await agent.GetPublicKeysAsync("acme");

        Assert.NotEqual(oldDecision.Receipt!.Kid, newDecision.Receipt!.Kid);
        Assert.True(ReceiptVerifier.Verify(oldDecision.Receipt, keys, oldSubmitted.JobHash!, DateTimeOffset.UtcNow, out _, out var r1), r1);
        Assert.True(ReceiptVerifier.Verify(newDecision.Receipt, keys, newSubmitted.JobHash!, DateTimeOffset.UtcNow, out _, out var r2), r2);
        Assert.NotNull(Assert.Single(keys, k => k.Kid == oldDecision.Receipt.Kid).RetiredAt);
        Assert.Equal(HttpStatusCode.Forbidden, (await _app.Account("alice").PostAsync("/api/v1/tenants/acme/keys/rotate", null)).StatusCode);
    }
}
