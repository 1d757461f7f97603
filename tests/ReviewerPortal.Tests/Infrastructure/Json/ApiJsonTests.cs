using System.Reflection;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Tests.Support;


namespace ReviewerPortal.Tests.Infrastructure.Json;

/// <summary>
/// The API's answers are written by the source-generated serializers (issue 13: the reflection converters ran on every
/// answer because one context in the HTTP options' resolver chain was generated with other options).
/// </summary>
public sealed class ApiJsonTests
{
    [Fact]
    public async Task The_api_writes_its_answers_through_the_source_generated_fast_path()
    {
        await using var app = await TestApp.StartAsync();
        var options = app.Services.GetRequiredService<IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions>>().Value.SerializerOptions;

        foreach (var type in new[] { typeof(Approval), typeof(SubmitJobResponse), typeof(DecisionResponse), typeof(ApprovalListResponse) })
        {
            var info = options.GetTypeInfo(type);
            // System.Text.Json keeps whether a type may use its generated writer in an internal flag; the chain's
            // contexts must all agree with the options for it to be set.
            var canUse = (bool)typeof(JsonTypeInfo).GetProperty("CanUseSerializeHandler", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(info)!;
            Assert.True(canUse, $"{type.Name} is written by the reflection converters");
        }
    }
}
