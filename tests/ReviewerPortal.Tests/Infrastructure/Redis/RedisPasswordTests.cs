using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Infrastructure.Redis;

/// <summary>
/// Nobody on the host reaches the app's Redis without its password (issue 21, item 1): the embedded Garnet the app
/// starts, and an external redis-server that requires one (a password, or an ACL user and its password).
/// </summary>
public sealed class RedisPasswordTests
{
    [Fact]
    public async Task Embedded_garnet_started_by_the_app_refuses_a_connection_without_its_password()
    {
        await using var app = await TestApp.StartAsync(settings: new Dictionary<string, string?>
        {
            ["Redis:Configuration"] = "", // the app starts its own embedded Garnet
            ["Redis:KeyPrefix"] = "",
        });
        var redis = app.Services.GetRequiredService<RedisConnection>();
        Assert.Equal("embedded", redis.Mode);
        var port = int.Parse(redis.Endpoint!.Split(':')[^1]);

        var passwordFile = Path.Combine(app.DataPath, "redis", "redis-password");
        Assert.True(File.Exists(passwordFile), "the generated password is kept in the data folder");
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile)); // chmod 600
        }
        var password = (await File.ReadAllTextAsync(passwordFile)).Trim();
        Assert.Equal(43, password.Length); // 32 random bytes, base64url

        Assert.StartsWith("-NOAUTH", await ReplyAsync(port, ["SET", "intruder", "was-here"]));
        Assert.StartsWith("-NOAUTH", await ReplyAsync(port, ["KEYS", "*"]));
        Assert.StartsWith("-WRONGPASS", await ReplyAsync(port, ["AUTH", "guessed-password"]));
        Assert.Equal("+OK", await ReplyAsync(port, ["AUTH", password]));

        // Bound to loopback only, and the password is not on Garnet's command line (which every user of the host can read).
        var pid = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(app.DataPath, "redis", "garnet.pid.json"))).RootElement.GetProperty("Pid").GetInt32();
        var commandLine = (await File.ReadAllTextAsync($"/proc/{pid}/cmdline")).Replace('\0', ' ');
        Assert.Contains("--bind 127.0.0.1", commandLine);
        Assert.DoesNotContain(password, commandLine);
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
        var submitted = await app.Agent("acme").SubmitPayment(7);
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(submitted.Str("approvalId"))).StatusCode);
    }

    [SkippableFact]
    public async Task App_runs_on_a_redis_server_that_requires_a_password_and_others_are_refused()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        await using var server = await RedisServerProcess.StartAsync("--requirepass", password, "--appendonly", "no");

        await using var app = await TestApp.StartAsync(redis: server.Endpoint, settings: new Dictionary<string, string?> { ["Redis:Password"] = password });

        await DecidesAsync(app);
        Assert.StartsWith("-NOAUTH", await ReplyAsync(server.Port, ["KEYS", "*"]));
        Assert.Equal("+OK", await ReplyAsync(server.Port, ["AUTH", password]));
    }

    [SkippableFact]
    public async Task App_runs_on_a_redis_server_as_an_acl_user_with_its_password()
    {
        Skip.If(TestServers.RedisServerPath() is null, TestServers.RedisInstallHint);
        var password = Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
        await using var server = await RedisServerProcess.StartAsync(
            "--user", "default", "off", "--user", "portal", "on", ">" + password, "~*", "&*", "+@all");

        await using var app = await TestApp.StartAsync(redis: server.Endpoint, settings: new Dictionary<string, string?>
        {
            ["Redis:User"] = "portal",
            ["Redis:Password"] = password,
        });

        await DecidesAsync(app);
        Assert.StartsWith("-NOAUTH", await ReplyAsync(server.Port, ["KEYS", "*"]));
        Assert.StartsWith("-WRONGPASS", await ReplyAsync(server.Port, ["AUTH", password])); // the default user is off
        Assert.Equal("+OK", await ReplyAsync(server.Port, ["AUTH", "portal", password]));
    }

    private static async Task DecidesAsync(TestApp app)
    {
        Assert.Equal(HttpStatusCode.OK, (await app.CreateClient().GetAsync("/healthz")).StatusCode);
        var submitted = await app.Agent("acme").SubmitPayment(8);
        var id = submitted.Str("approvalId");
        Assert.Equal(HttpStatusCode.OK, (await app.Account("alice").Approve(id)).StatusCode);
        Assert.Equal("approved", (await (await app.Agent("acme").GetAsync($"/api/v1/approvals/{id}")).Json()).Str("state"));
    }

    /// <summary>The first line of the server's reply to one command, sent on a fresh connection of its own.</summary>
    private static async Task<string> ReplyAsync(int port, string[] command)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        var stream = client.GetStream();
        var request = new StringBuilder($"*{command.Length}\r\n");
        foreach (var part in command)
        {
            request.Append($"${Encoding.UTF8.GetByteCount(part)}\r\n{part}\r\n");
        }
        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()));
        var reply = new StringBuilder();
        var buffer = new byte[256];
        while (!reply.ToString().Contains("\r\n", StringComparison.Ordinal))
        {
            var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            if (read == 0)
            {
                break;
            }
            reply.Append(Encoding.UTF8.GetString(buffer, 0, read));
        }
        return reply.ToString().Split("\r\n")[0];
    }
}
