using System.Text;
using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Tests.Features.Policies;

/// <summary>A policy cannot make the server do unbounded work (security pass item 8: YAML anchors and aliases).</summary>
public sealed class PolicyBombTests
{
    [Fact]
    public void Anchors_and_aliases_are_refused_naming_the_line()
    {
        var yaml = """
            version: v1
            rules:
              - &big
                id: a
                when: { topic: x }
                decision: allow
              - *big
            """;

        var result = PolicyParser.Parse(yaml);

        Assert.Null(result.Document);
        var error = Assert.Single(result.Errors);
        Assert.Contains("anchor", error.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(3, error.Line);
    }

    [Fact]
    public void A_rule_with_thousands_of_keys_referenced_a_thousand_times_is_refused_fast_with_a_small_answer()
    {
        var b = new StringBuilder("version: v1\nrules:\n  - &r\n    id: r\n    decision: allow\n    when:\n");
        for (var i = 0; i < 3000; i++)
        {
            b.Append($"      k{i}: v\n");
        }
        for (var i = 0; i < 1000; i++)
        {
            b.Append("  - *r\n");
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var result = PolicyParser.Parse(b.ToString());

        Assert.Null(result.Document);
        Assert.InRange(result.Errors.Count, 1, 101);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
    }

    [Fact]
    public void At_most_a_hundred_errors_are_listed_and_the_rest_counted()
    {
        var b = new StringBuilder("version: v1\nrules:\n");
        for (var i = 0; i < 300; i++)
        {
            b.Append($"  - id: r{i}\n    decision: nonsense\n");
        }

        var result = PolicyParser.Parse(b.ToString());

        Assert.Equal(101, result.Errors.Count);
        Assert.Contains("200 more", result.Errors[^1].Message);
    }
}
