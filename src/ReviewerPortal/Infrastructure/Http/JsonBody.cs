using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// Reads a JSON body with the source-generated contract and turns every failure into a 400 naming the field:
/// malformed JSON, a wrong type, or a field the contract does not know; a body over its size limit or nested past
/// <see cref="RequestLimitOptions.MaxJsonDepth"/> is a 400 on <c>body</c> naming the limit and its setting.
/// </summary>
public static class JsonBody
{
    private const string DefaultLimitSetting = $"{RequestLimitOptions.Section}:{nameof(RequestLimitOptions.MaxJsonBytes)}";

    /// <param name="maxBytes">This route's size limit, and the setting it comes from; default <see cref="RequestLimitOptions.MaxJsonBytes"/>.</param>
    public static async Task<(T? Value, ValidationProblem? Error)> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> type, bool optional = false,
        (int Bytes, string Setting)? maxBytes = null)
        where T : class
    {
        var limits = request.HttpContext.RequestServices.GetRequiredService<IOptions<RequestLimitOptions>>().Value;
        var (MaxBytes, setting) = maxBytes ?? (limits.MaxJsonBytes, DefaultLimitSetting);
        var (fits, answer) = await BoundedBody.ReadAsync(request, MaxBytes, json => Parse(request, json, type, optional, limits),
            request.HttpContext.RequestAborted);
        return fits ? answer : (null, Problems.Invalid("body", $"The body is larger than {MaxBytes / 1024} KiB, this route's limit ({setting})."));
    }

    private static (T? Value, ValidationProblem? Error) Parse<T>(HttpRequest request, ReadOnlySpan<byte> json, JsonTypeInfo<T> type, bool optional,
        RequestLimitOptions limits)
        where T : class
    {
        if (json.IsEmpty)
        {
            return optional
                ? (JsonSerializer.Deserialize("{}", type), null)
                : (null, Problems.Invalid("body", "A JSON body is required."));
        }
        if (request.ContentType is { } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, Problems.Invalid("Content-Type", "Send the body as application/json."));
        }
        if (TooDeep(json, limits.MaxJsonDepth))
        {
            return (null, Problems.Invalid("body",
                $"The JSON is nested deeper than {limits.MaxJsonDepth} levels, the limit ({RequestLimitOptions.Section}:{nameof(RequestLimitOptions.MaxJsonDepth)})."));
        }
        try
        {
            var value = JsonSerializer.Deserialize(json, type);
            return value is null ? (null, Problems.Invalid("body", "The body must be a JSON object.")) : (value, null);
        }
        catch (JsonException ex)
        {
            return (null, Problems.Invalid(FieldOf(ex), Describe(ex)));
        }
    }

    /// <summary>One pass of the reader, before any object is built; other faults are left to the deserializer's messages.</summary>
    private static bool TooDeep(ReadOnlySpan<byte> json, int maxDepth)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = maxDepth + 1 });
        try
        {
            while (reader.Read())
            {
                if (reader.CurrentDepth >= maxDepth && reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
                {
                    return true;
                }
            }
        }
        catch (JsonException)
        {
            return reader.CurrentDepth >= maxDepth;
        }
        return false;
    }

    private static string FieldOf(JsonException ex)
    {
        var unmapped = UnmappedName(ex.Message);
        if (unmapped is not null)
        {
            return unmapped;
        }
        var path = ex.Path;
        return string.IsNullOrEmpty(path) || path == "$" ? "body" : path.TrimStart('$', '.');
    }

    private static string Describe(JsonException ex)
    {
        var unmapped = UnmappedName(ex.Message);
        if (unmapped is not null)
        {
            return $"Unknown field '{unmapped}'.";
        }
        return ex.Path is null or "$"
            ? "The body is not valid JSON."
            : $"The value at '{ex.Path.TrimStart('$', '.')}' is not valid here (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}).";
    }

    private static string? UnmappedName(string message)
    {
        // "The JSON property 'foo' could not be mapped to any .NET member contained in type '…'."
        const string marker = "The JSON property '";
        var start = message.IndexOf(marker, StringComparison.Ordinal);
        if (start < 0 || !message.Contains("could not be mapped", StringComparison.Ordinal))
        {
            return null;
        }
        start += marker.Length;
        var end = message.IndexOf('\'', start);
        return end > start ? message[start..end] : null;
    }
}
