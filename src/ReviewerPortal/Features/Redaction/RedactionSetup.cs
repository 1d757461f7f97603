namespace ReviewerPortal.Features.Redaction;

public static class RedactionSetup
{
    /// <summary>The secret scanner for free text (options <c>Redaction</c>); payload masking is static (<see cref="PayloadMasking"/>).</summary>
    public static IHostApplicationBuilder AddRedaction(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<RedactionOptions>().BindConfiguration(RedactionOptions.Section).ValidateDataAnnotations().ValidateOnStart();
        builder.Services.AddSingleton<Redactor>();
        builder.Services.AddSingleton<ReviewerView>();
        return builder;
    }
}
