using Microsoft.AspNetCore.Http.HttpResults;
using ReviewerPortal.Infrastructure.Http;
using ReviewerPortal.Infrastructure.Outbound;

namespace ReviewerPortal.Features.Slack;

public static class SlackSetup
{
    /// <summary>Slack messages (posted by the notifier) and the interactions endpoint's verifier.</summary>
    public static IHostApplicationBuilder AddSlack(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SlackOptions>().BindConfiguration(SlackOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<SlackMessages>();
        builder.Services.AddSingleton<SlackInteractions>();
        builder.Services.AddOutboundHttpClient(SlackMessages.HttpClientName);
        return builder;
    }
}

/// <summary><c>POST /api/v1/integrations/slack/interactions</c>: Slack's button clicks, authenticated by their signature only.</summary>
public static class SlackApi
{
    /// <summary>A click is a few kilobytes; anything much larger is not one.</summary>
    public const int MaxBodyBytes = 256 * 1024;

    public static IEndpointRouteBuilder MapSlackApi(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/api/v1/integrations/slack/interactions", Interactions)
            .WithTags("Integrations").WithName("SlackInteractions").AllowAnonymous()
            .WithSummary("Slack's button clicks (form-encoded payload=, signed with the tenant's Slack signing secret).");
        return routes;
    }

    public static async Task<Results<Ok, ProblemHttpResult>> Interactions(HttpRequest request, SlackInteractions slack, CancellationToken cancellationToken)
    {
        var body = await ReadAsync(request, cancellationToken);
        var click = body is null ? null
            : await slack.VerifyAsync(body, request.Headers["X-Slack-Request-Timestamp"], request.Headers["X-Slack-Signature"]);
        if (click is null)
        {
            return Problems.Of(StatusCodes.Status401Unauthorized, "invalid_signature",
                "Not a Slack button click of a tenant with Slack, signed with its signing secret within the last 5 minutes.");
        }
        await slack.HandleAsync(click, cancellationToken);
        return TypedResults.Ok();
    }

    private static async Task<string?> ReadAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var (fits, body) = await BoundedBody.ReadAsync(request, MaxBodyBytes, System.Text.Encoding.UTF8.GetString, cancellationToken);
        return fits ? body : null;
    }
}
