using System.Text.Json;
using System.Text.Json.Serialization;

namespace ReviewerPortal.Infrastructure.Json;

/// <summary>
/// The API's JSON: <see cref="AppJsonContext"/> first, written by its source-generated writers. System.Text.Json uses
/// those writers only when every resolver in the options' chain was generated with the options' own settings and
/// the options set no encoder (issue 13: every answer took the reflection path, ~4 % of a cycle's CPU).
/// </summary>
public static class ApiJson
{
    public static IServiceCollection AddApiJson(this IServiceCollection services)
    {
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.TypeInfoResolverChain.Insert(0, AppJsonContext.Default);
            // ASP.NET Core's HTTP options pick the relaxed encoder; the default one also escapes HTML-sensitive
            // characters, and the JSON read back is the same.
            o.SerializerOptions.Encoder = null;
        });
        // After every library's own configuration: the framework's contexts (OpenAPI's schema types, ProblemDetails)
        // are generated without a naming policy, which switches the generated writers off for every type. Their
        // types are still served: ProblemDetails by AppJsonContext, the rest by the reflection resolver that follows.
        services.PostConfigure<Microsoft.AspNetCore.Http.Json.JsonOptions>(o =>
        {
            var chain = o.SerializerOptions.TypeInfoResolverChain;
            for (var i = chain.Count - 1; i >= 0; i--)
            {
                if (chain[i] is JsonSerializerContext context && !WritesAlike(context.Options, o.SerializerOptions))
                {
                    chain.RemoveAt(i);
                }
            }
        });
        return services;
    }

    /// <summary>The settings System.Text.Json compares before it lets a context's generated writers run.</summary>
    internal static bool WritesAlike(JsonSerializerOptions generated, JsonSerializerOptions options) =>
        generated.PropertyNamingPolicy == options.PropertyNamingPolicy
        && generated.DefaultIgnoreCondition == options.DefaultIgnoreCondition
        && generated.IgnoreReadOnlyFields == options.IgnoreReadOnlyFields
        && generated.IgnoreReadOnlyProperties == options.IgnoreReadOnlyProperties
        && generated.IncludeFields == options.IncludeFields
        && generated.RespectNullableAnnotations == options.RespectNullableAnnotations;
}
