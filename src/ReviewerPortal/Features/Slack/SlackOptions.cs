using System.ComponentModel.DataAnnotations;

namespace ReviewerPortal.Features.Slack;

public sealed class SlackOptions
{
    public const string Section = "Slack";

    /// <summary>
    /// The hosts a click's <c>response_url</c> may point at (the message is updated there). Slack's is
    /// <c>hooks.slack.com</c>; anything else in a click is not called. The call goes through the outbound rules too.
    /// </summary>
    [MinLength(1)]
    public List<string> ResponseUrlHosts { get; set; } = ["hooks.slack.com"];

    /// <summary>
    /// Time budget of one call to Slack (posting a request, updating a message). A click is answered after its message
    /// is updated, and Slack gives an interaction 3 seconds: the default of 2 s keeps a slow <c>response_url</c> from
    /// making Slack report a timeout (the decision itself is made and audited either way).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:01:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(2);
}
