using System.Net;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Tests.Support;

namespace ReviewerPortal.Tests.Features.Auth;

/// <summary>
/// Sign-in tells nobody which accounts exist and cannot be used to lock a real person out (security pass item 6):
/// an unknown name is checked against a dummy hash and answered like a wrong password; failures slow down the
/// source (client address and account name), not the account for everyone; throttling and every outcome are audited.
/// </summary>
public sealed class SignInHardeningTests
{
    [Fact]
    public async Task An_unknown_name_is_verified_against_a_dummy_hash_and_answered_like_a_wrong_password()
    {
        var hasher = new CountingHasher();
        await using var app = await TestApp.StartAsync(services: s =>
        {
            s.AddSingleton<IPasswordHasher<IdentityUser>>(hasher);
            ClientAddresses.Add(s);
        });
        using var client = Browser(app);

        var before = hasher.Verifications;
        var wrong = await LoginForm.PostAsync(client, "alice", "not-her-password", "203.0.113.1");
        var afterReal = hasher.Verifications;
        var unknown = await LoginForm.PostAsync(client, "nobody-by-this-name", "not-her-password", "203.0.113.2");
        var afterUnknown = hasher.Verifications;

        Assert.Equal(1, afterReal - before);
        Assert.Equal(1, afterUnknown - afterReal); // the same work: one hash verification, whether the account exists or not
        Assert.Equal(wrong.StatusCode, unknown.StatusCode);
        Assert.Equal(HttpStatusCode.OK, unknown.StatusCode);
        var message = await LoginForm.ErrorAsync(wrong);
        Assert.NotNull(message);
        Assert.Equal(message, await LoginForm.ErrorAsync(unknown));
        Assert.Equal(2, await app.AuditCountAsync(null, "sign_in_failed"));
    }

    [Fact]
    public async Task Five_failures_from_one_address_slow_that_address_but_not_the_real_user_elsewhere()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add);
        using var attacker = Browser(app);
        for (var i = 0; i < 5; i++)
        {
            var failed = await LoginForm.PostAsync(attacker, "alice", $"guess-{i}", "198.51.100.7");
            Assert.False(LoginForm.SignedIn(failed));
        }

        // The attacker's address is slowed down, even with the right password ...
        var throttled = await LoginForm.PostAsync(attacker, "alice", "demo-alice", "198.51.100.7");
        Assert.False(LoginForm.SignedIn(throttled));
        Assert.Contains("Too many", await LoginForm.ErrorAsync(throttled));

        // ... while alice, from her own address, signs in as usual.
        using var alice = Browser(app);
        var signedIn = await LoginForm.PostAsync(alice, "alice", "demo-alice", "192.0.2.10");
        Assert.True(LoginForm.SignedIn(signedIn), await LoginForm.ErrorAsync(signedIn) ?? signedIn.StatusCode.ToString());
        Assert.Equal(1, await app.AuditCountAsync(null, "signed_in"));
        Assert.Equal(5, await app.AuditCountAsync(null, "sign_in_failed"));
    }

    [Fact]
    public async Task Too_many_attempts_reads_the_same_for_a_real_and_an_unknown_name_and_is_audited()
    {
        await using var app = await TestApp.StartAsync(services: ClientAddresses.Add,
            settings: new Dictionary<string, string?> { ["Auth:SignIn:MaxFailuresPerWindow"] = "3" });
        using var client = Browser(app);
        foreach (var name in new[] { "bob", "ghost-account" })
        {
            for (var i = 0; i < 3; i++)
            {
                await LoginForm.PostAsync(client, name, $"guess-{i}", "198.51.100.8");
            }
        }

        var real = await LoginForm.PostAsync(client, "bob", "guess-9", "198.51.100.8");
        var unknown = await LoginForm.PostAsync(client, "ghost-account", "guess-9", "198.51.100.8");

        Assert.Equal(real.StatusCode, unknown.StatusCode);
        var message = await LoginForm.ErrorAsync(real);
        Assert.Contains("Too many", message);
        Assert.Equal(message, await LoginForm.ErrorAsync(unknown));
        Assert.Equal(2, await app.AuditCountAsync(null, "sign_in_throttled"));
        Assert.Equal(6, await app.AuditCountAsync(null, "sign_in_failed"));
    }

    [Fact]
    public async Task Admins_read_the_accounts_audit_stream_and_reviewers_do_not()
    {
        await using var app = await TestApp.StartAsync();
        using var client = Browser(app);
        await LoginForm.PostAsync(client, "alice", "wrong-password");

        var asAdmin = await app.Account("ada").GetAsync("/api/v1/audit?tenant=_accounts");
        var asReviewer = await app.Account("alice").GetAsync("/api/v1/audit?tenant=_accounts");

        Assert.Equal(HttpStatusCode.OK, asAdmin.StatusCode);
        var items = (await asAdmin.Json()).GetProperty("items").EnumerateArray().ToList();
        Assert.Contains(items, e => e.Str("action") == "sign_in_failed" && e.Str("actor") == "user:alice");
        Assert.Equal(HttpStatusCode.NotFound, asReviewer.StatusCode);
    }

    [Fact]
    public async Task A_sign_in_audited_while_the_database_fails_its_commits_reaches_the_table_through_the_outbox()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow);
        var failing = new FailingCommits();
        await using var app = await TestApp.StartAsync(clock, settings: new Dictionary<string, string?> { ["Approvals:AuditOutboxGrace"] = "00:01:00" },
            services: s => s.AddSingleton<Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor>(failing));
        using var client = Browser(app);
        await client.GetStringAsync("/account/login");

        failing.FailAll();
        await LoginForm.PostAsync(client, "alice", "wrong-password");
        failing.Heal();
        Assert.True(failing.Failed >= 1);
        Assert.Equal(0, await app.AuditCountAsync(null, "sign_in_failed"));

        clock.Advance(TimeSpan.FromMinutes(2));
        var drain = app.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<ReviewerPortal.Features.Approvals.AuditOutboxDrain>().Single();
        await drain.DrainAllAsync(CancellationToken.None);

        Assert.Equal(1, await app.AuditCountAsync(null, "sign_in_failed"));
    }

    private static HttpClient Browser(TestApp app) =>
        app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>Identity's own hasher, counting how often a password is checked.</summary>
    private sealed class CountingHasher : IPasswordHasher<IdentityUser>
    {
        private readonly PasswordHasher<IdentityUser> _inner = new();
        private int _verifications;

        public int Verifications => Volatile.Read(ref _verifications);

        public string HashPassword(IdentityUser user, string password) => _inner.HashPassword(user, password);

        public PasswordVerificationResult VerifyHashedPassword(IdentityUser user, string hashedPassword, string providedPassword)
        {
            Interlocked.Increment(ref _verifications);
            return _inner.VerifyHashedPassword(user, hashedPassword, providedPassword);
        }
    }
}
