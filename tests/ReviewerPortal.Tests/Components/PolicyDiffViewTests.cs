using Bunit;
using ReviewerPortal.Components.Shared;
using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Tests.Components;

public sealed class PolicyDiffViewTests : BunitContext
{
    [Fact]
    public void Rules_are_marked_added_removed_changed_with_their_lines()
    {
        var before = PolicyParser.Parse("version: v1\nrules:\n  - id: keep\n    decision: allow\n  - id: edit\n    when: {topic: a}\n    decision: allow\n  - id: gone\n    decision: deny\n").Document;
        var after = PolicyParser.Parse("version: v1\nrules:\n  - id: keep\n    decision: allow\n  - id: edit\n    when: {topic: b}\n    decision: allow\n  - id: new\n    decision: require_human\n").Document!;

        var cut = Render<PolicyDiffView>(p => p.Add(c => c.Changes, PolicyDiff.Compare(before, after)));

        Assert.Empty(cut.FindAll("[data-rule=keep]"));
        Assert.Equal("changed", cut.Find("[data-rule=edit]").GetAttribute("data-change"));
        Assert.Equal("- " + "  topic: \"a\"", cut.Find("[data-rule=edit] .rp-line-removed").TextContent.TrimEnd());
        Assert.Equal("+ " + "  topic: \"b\"", cut.Find("[data-rule=edit] .rp-line-added").TextContent.TrimEnd());
        Assert.Equal("added", cut.Find("[data-rule=new]").GetAttribute("data-change"));
        Assert.Equal("removed", cut.Find("[data-rule=gone]").GetAttribute("data-change"));
        Assert.Empty(cut.FindAll("[data-testid=policy-unchanged]"));
    }

    [Fact]
    public void Same_policy_says_no_change()
    {
        var doc = PolicyParser.Parse(DemoPolicies.Default).Document!;
        var cut = Render<PolicyDiffView>(p => p.Add(c => c.Changes, PolicyDiff.Compare(doc, doc)));
        Assert.Contains("No change", cut.Find("[data-testid=policy-unchanged]").TextContent);
    }
}
