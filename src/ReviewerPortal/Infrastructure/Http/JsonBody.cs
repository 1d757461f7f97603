using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.HttpResults;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// Reads a JSON body with the source-generated contract and turns every failure into a 400 naming the field:
/// malformed JSON, a wrong type, or a field the contract does not know.
/// </summary>
public static class JsonBody
{
    public const int MaxBytes = 256 * 1024;

    public static async Task<(T? Value, ValidationProblem? Error)> ReadAsync<T>(HttpRequest request, JsonTypeInfo<T> type, bool optional = false)
        where T : class
    {
        if (request.ContentLength is > MaxBytes)
        {
            return (null, Problems.Invalid("body", $"The body is larger than {MaxBytes / 1024} KiB."));
        }
        // Never more than the limit and one byte: a body sent chunked has no length to refuse it by up front.
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, MaxBytes + 1 - buffer.Length)),
                   request.HttpContext.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBytes)
            {
                return (null, Problems.Invalid("body", $"The body is larger than {MaxBytes / 1024} KiB."));
            }
        }
        if (buffer.Length == 0)
        {
            return optional
                ? (JsonSerializer.Deserialize("{}", type), null)
                : (null, Problems.Invalid("body", "A JSON body is required."));
        }
        if (request.ContentType is { } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            return (null, Problems.Invalid("Content-Type", "Send the body as application/json."));
        }
        try
        {
            var value = JsonSerializer.Deserialize(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), type);
            return value is null ? (null, Problems.Invalid("body", "The body must be a JSON object.")) : (value, null);
        }
        catch (JsonException ex)
        {
            return (null, Problems.Invalid(FieldOf(ex), Describe(ex)));
        }
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
