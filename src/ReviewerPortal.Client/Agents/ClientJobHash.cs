using System.Buffers;
using System.Security.Cryptography;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace ReviewerPortal.Client.Agents;

/// <summary>
/// The job hash as the server computes it (SHA-256 of the canonical JSON of tenant, topic, env, channel and payload,
/// object keys sorted ordinally at every depth), so an agent can check on its own that what was approved is exactly
/// what it is about to run.
/// </summary>
public static class ClientJobHash
{
    public static string Compute(string tenant, string topic, string env, string? channel, JsonElement payload)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            writer.WriteString("channel", channel);
            writer.WriteString("env", env);
            writer.WritePropertyName("payload");
            WriteCanonical(writer, payload);
            writer.WriteString("tenant", tenant);
            writer.WriteString("topic", topic);
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
