using System.Buffers;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// The job hash: SHA-256 of the canonical JSON of tenant, topic, env, channel and payload (object keys sorted
/// ordinally at every depth, no insignificant white space, numbers as written).
/// </summary>
public static class JobHasher
{
    public static string Hash(string tenant, JobRequest job)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("channel", job.Channel);
            writer.WriteString("env", job.Env);
            writer.WritePropertyName("payload");
            WriteCanonical(writer, job.Payload);
            writer.WriteString("tenant", tenant);
            writer.WriteString("topic", job.Topic);
            writer.WriteEndObject();
        }
        return Convert.ToHexStringLower(SHA256.HashData(buffer.WrittenSpan));
    }

    private static void WriteCanonical(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                writer.WriteStartObject();
                foreach (var property in element.EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
                {
                    writer.WritePropertyName(property.Name);
                    WriteCanonical(writer, property.Value);
                }
                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteCanonical(writer, item);
                }
                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }
}
