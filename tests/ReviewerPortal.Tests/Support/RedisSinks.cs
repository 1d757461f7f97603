using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using ReviewerPortal.Infrastructure.Redis;

namespace ReviewerPortal.Tests.Support;

/// <summary>A tenant's Redis list sink as the dispatch tests use it: set through the admin API, read back as JSON.</summary>
public static class RedisSinks
{
    public const string DefaultKey = "workers";

    /// <summary>ada sets <paramref name="tenant"/>'s sink to the Redis list <paramref name="key"/>.</summary>
    public static async Task UseRedisSinkAsync(this TestApp app, string tenant = "acme", string key = DefaultKey)
    {
        var put = await app.Account("ada").PutAsJsonAsync($"/api/v1/tenants/{tenant}/settings", new { dispatch = new { kind = "redis", key } });
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
    }

    /// <summary>The messages published to <paramref name="tenant"/>'s Redis list sink, oldest last.</summary>
    public static async Task<List<JsonElement>> RedisSinkAsync(this TestApp app, string tenant = "acme", string key = DefaultKey)
    {
        var items = await app.Services.GetRequiredService<RedisConnection>().Database.ListRangeAsync(RedisKeys.Sink(tenant, key));
        return [.. items.Select(i => JsonDocument.Parse((string)i!).RootElement.Clone())];
    }
}
