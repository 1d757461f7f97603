using System.Text.Json;
using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Tests.Features.Policies;

public sealed class PolicyParserTests
{
    private static PolicyDocument Demo => PolicyParser.Parse(DemoPolicies.Default).Document!;

    private static PolicyEvaluation Decide(string topic, string env = "production", string? channel = null, string payload = "{}") =>
        PolicyEvaluator.Evaluate(Demo, new JobFacts(topic, env, channel, JsonDocument.Parse(payload).RootElement));

    [Theory]
    [InlineData("knowledge.read", "production", null, PolicyDecision.Allow, "allow-readonly")]
    [InlineData("finance.payment.execute", "production", null, PolicyDecision.RequireHuman, "require-approval-prod-finance")]
    [InlineData("finance.payment.execute", "staging", null, PolicyDecision.RequireHuman, null)]
    [InlineData("customer.notify", "production", "external", PolicyDecision.RequireHuman, "require-approval-external-notify")]
    [InlineData("secrets.export", "dev", null, PolicyDecision.Deny, "deny-secrets-export")]
    [InlineData("email.bulk_send", "production", null, PolicyDecision.Throttle, "throttle-bulk-email")]
    [InlineData("something.else", "production", null, PolicyDecision.RequireHuman, null)]
    public void Demo_policy_decides_each_topic(string topic, string env, string? channel, PolicyDecision decision, string? rule)
    {
        var result = Decide(topic, env, channel);
        Assert.Equal(decision, result.Decision);
        Assert.Equal(rule, result.RuleId);
    }

    [Fact]
    public void StepUp_marks_a_require_human_rule_and_changes_its_snapshot_only_when_set()
    {
        const string Policy = """
            version: v1
            default: require_human
            rules:
              - id: payments
                when:
                  topic: finance.*
                decision: require_human
            """;
        var plain = PolicyParser.Parse(Policy).Document!;
        var off = PolicyParser.Parse(Policy + "\n    stepUp: false\n").Document!;
        var on = PolicyParser.Parse(Policy + "\n    stepUp: true\n").Document!;
        Assert.False(plain.Rules[0].StepUp);
        Assert.Equal(plain.Snapshot, off.Snapshot);
        Assert.True(on.Rules[0].StepUp);
        Assert.NotEqual(plain.Snapshot, on.Snapshot);
        Assert.Contains("stepUp: true", on.CanonicalYaml);
        Assert.True(PolicyParser.Parse(on.CanonicalYaml).Document!.Rules[0].StepUp);

        var denied = PolicyParser.Parse(Policy.Replace("decision: require_human", "decision: deny") + "\n    stepUp: true\n");
        Assert.Contains(denied.Errors, e => e.Field == "rules[0].stepUp");
        Assert.Contains(PolicyParser.Parse(Policy + "\n    stepUp: maybe\n").Errors, e => e.Field == "rules[0].stepUp");
    }

    [Fact]
    public void Throttle_rule_carries_its_rate()
    {
        Assert.Equal(new ThrottleRate(5, TimeSpan.FromMinutes(1)), Decide("email.bulk_send").Rate);
    }

    [Fact]
    public void First_match_wins_and_globs_and_payload_paths_match()
    {
        var doc = PolicyParser.Parse("""
            version: v1
            default: deny
            rules:
              - id: big
                when: { topic: "finance.*", payload.amount: "1????" }
                decision: require_human
                ttl: 72h
              - id: nested
                when: { payload.meta.team: "ops-*" }
                decision: allow
              - id: any-finance
                when: { topic: "finance.*" }
                decision: allow
            """).Document!;
        JobFacts Job(string topic, string payload) => new(topic, "p", null, JsonDocument.Parse(payload).RootElement);

        Assert.Equal("any-finance", PolicyEvaluator.Evaluate(doc, Job("finance.refund", """{"amount":12}""")).RuleId);
        Assert.Equal("nested", PolicyEvaluator.Evaluate(doc, Job("x", """{"meta":{"team":"ops-eu"}}""")).RuleId);
        Assert.Null(PolicyEvaluator.Evaluate(doc, Job("x", """{"meta":{"team":"dev"}}""")).RuleId);
        Assert.Equal(PolicyDecision.Deny, PolicyEvaluator.Evaluate(doc, Job("x", "{}")).Decision);
        Assert.True(PolicyEvaluator.Glob("a*b", "axxb"));
        Assert.True(PolicyEvaluator.Glob("*", ""));
        Assert.False(PolicyEvaluator.Glob("a*b", "axxc"));
    }

    [Fact]
    public void Missing_channel_does_not_match_a_star()
    {
        var doc = PolicyParser.Parse("version: v1\nrules:\n  - id: has-channel\n    when: { channel: \"*\" }\n    decision: allow\n").Document!;
        var job = new JobFacts("t", "e", null, JsonDocument.Parse("{}").RootElement);
        Assert.Null(PolicyEvaluator.Evaluate(doc, job).RuleId);
    }

    [Theory]
    [InlineData("version: v1\nrules: []\ncolour: red\n", "colour", 3, 1)]
    [InlineData("version: v1\nrules:\n  - id: a\n    when: { topic: x }\n    decision: maybe\n", "rules[0].decision", 5, 15)]
    [InlineData("version: v1\nrules:\n  - id: a\n    when: { tpoic: x }\n    decision: allow\n", "rules[0].when.tpoic", 4, 13)]
    [InlineData("version: v2\nrules: []\n", "version", 1, 10)]
    [InlineData("version: v1\nrules:\n  - id: a\n    decision: throttle\n", "rules[0].rate", 4, 15)]
    [InlineData("version: v1\nrules:\n  - id: a\n    decision: throttle\n    rate: lots\n", "rules[0].rate", 5, 11)]
    [InlineData("version: v1\nrules:\n  - id: a\n    decision: require_human\n    ttl: 31d\n", "rules[0].ttl", 5, 10)]
    [InlineData("version: v1\nrules:\n  - id: a\n    decision: allow\n  - id: a\n    decision: deny\n", "rules[1].id", 5, 9)]
    [InlineData("version: v1\nrules:\n  - id: a\n    decision: allow\n    ttl: 1h\n", "rules[0].ttl", 5, 10)]
    [InlineData("version: v1\nrules: [\n", "", 3, 1)]
    public void Invalid_policy_is_refused_with_field_line_and_column(string yaml, string field, int line, int column)
    {
        var result = PolicyParser.Parse(yaml);

        Assert.False(result.IsValid);
        var error = Assert.Single(result.Errors, e => e.Field == field);
        Assert.Equal((line, column), (error.Line, error.Column));
    }

    [Fact]
    public void Snapshot_ignores_comments_white_space_and_mapping_key_order()
    {
        var a = PolicyParser.Parse("version: v1\nrules:\n  - id: r\n    when: {topic: t, env: e}\n    decision: allow\n").Document!;
        var b = PolicyParser.Parse("# comment\nrules:\n  - decision: allow   # trailing\n    when:\n      env: e\n      topic: t\n    id: r\nversion: v1\ndefault: require_human\n").Document!;

        Assert.Equal(a.Snapshot, b.Snapshot);
        Assert.Matches("^[0-9a-f]{64}$", a.Snapshot);
    }

    [Fact]
    public void Snapshot_changes_when_a_rule_changes_or_rules_are_reordered()
    {
        const string one = "  - id: a\n    decision: allow\n";
        const string two = "  - id: b\n    decision: deny\n";
        var ab = PolicyParser.Parse("version: v1\nrules:\n" + one + two).Document!;
        var ba = PolicyParser.Parse("version: v1\nrules:\n" + two + one).Document!;
        var changed = PolicyParser.Parse("version: v1\nrules:\n" + one + "  - id: b\n    decision: allow\n").Document!;

        Assert.NotEqual(ab.Snapshot, ba.Snapshot);
        Assert.NotEqual(ab.Snapshot, changed.Snapshot);
    }

    [Fact]
    public void Canonical_form_parses_back_to_the_same_snapshot()
    {
        var again = PolicyParser.Parse(Demo.CanonicalYaml);
        Assert.True(again.IsValid, string.Join("; ", again.Errors));
        Assert.Equal(Demo.Snapshot, again.Document!.Snapshot);
    }

    [Theory]
    [InlineData("90s", 90)]
    [InlineData("15m", 900)]
    [InlineData("72h", 259200)]
    [InlineData("3d", 259200)]
    [InlineData("01:30:00", 5400)]
    [InlineData("1.00:00:00", 86400)]
    [InlineData("PT15M", 900)]
    [InlineData("P3D", 259200)]
    public void Durations_parse(string text, int seconds)
    {
        Assert.True(DurationText.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromSeconds(seconds), value);
    }

    [Fact]
    public void Durations_format_in_their_shortest_exact_unit()
    {
        Assert.Equal("3d", DurationText.Format(TimeSpan.FromDays(3)));
        Assert.Equal("90m", DurationText.Format(TimeSpan.FromMinutes(90)));
        Assert.Equal("45s", DurationText.Format(TimeSpan.FromSeconds(45)));
        Assert.False(DurationText.TryParse("soon", out _));
        Assert.Equal("100/15m", new ThrottleRate(100, TimeSpan.FromMinutes(15)).ToString());
    }

    [Fact]
    public void Diff_reports_added_removed_changed_and_default()
    {
        var before = PolicyParser.Parse("version: v1\nrules:\n  - id: keep\n    decision: allow\n  - id: edit\n    when: {topic: a}\n    decision: allow\n  - id: gone\n    decision: deny\n").Document!;
        var after = PolicyParser.Parse("version: v1\ndefault: deny\nrules:\n  - id: keep\n    decision: allow\n  - id: edit\n    when: {topic: b}\n    decision: allow\n  - id: new\n    decision: require_human\n").Document!;

        var diff = PolicyDiff.Compare(before, after).ToDictionary(d => d.RuleId);

        Assert.Equal(RuleChange.Unchanged, diff["keep"].Change);
        Assert.Equal(RuleChange.Changed, diff["edit"].Change);
        Assert.Contains(diff["edit"].Lines, l => l is { Kind: DiffKind.Removed, Text: "  topic: \"a\"" });
        Assert.Contains(diff["edit"].Lines, l => l is { Kind: DiffKind.Added, Text: "  topic: \"b\"" });
        Assert.Equal(RuleChange.Added, diff["new"].Change);
        Assert.Equal(RuleChange.Removed, diff["gone"].Change);
        Assert.Equal(RuleChange.Changed, diff[PolicyDiff.DefaultRuleId].Change);
    }
}
