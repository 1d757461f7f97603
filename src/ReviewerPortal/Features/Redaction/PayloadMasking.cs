using System.Text.Json;
using System.Text.Json.Nodes;
using ReviewerPortal.Features.Approvals;

namespace ReviewerPortal.Features.Redaction;

/// <summary>
/// Masks the payload fields a tenant lists (<c>redactFields</c>) wherever a person reads a payload: the portal, the
/// read API for accounts, the audit history and notifications. A path is dotted from the payload's root
/// (<c>card.number</c>); an array on the way is walked element by element (<c>lines.iban</c> masks every line's
/// <c>iban</c>); names are compared ignoring case. The whole value at a path (a leaf, an object or an array) becomes
/// <c>"[redacted:field]"</c>. Masking never touches what is stored: the job hash covers the original payload and the
/// dispatch carries it.
/// </summary>
public static class PayloadMasking
{
    public const string Kind = "field";
    public static readonly string Marker = Redactor.Marker(Kind);

    /// <summary>The payload with every listed field masked; the payload itself when nothing is listed or nothing matched.</summary>
    public static JsonElement Mask(JsonElement payload, IReadOnlyList<string> fields)
    {
        if (fields.Count == 0 || payload.ValueKind is not (JsonValueKind.Object or JsonValueKind.Array))
        {
            return payload;
        }
        var node = JsonNode.Parse(payload.GetRawText());
        var masked = false;
        foreach (var field in fields)
        {
            masked |= MaskPath(node, field.Split('.'), 0);
        }
        if (!masked)
        {
            return payload;
        }
        using var document = JsonDocument.Parse(node!.ToJsonString());
        return document.RootElement.Clone();
    }

    /// <summary>The approval as a reviewer may see it: its payload and every earlier version's payload masked.</summary>
    public static Approval Mask(Approval approval, IReadOnlyList<string> fields) =>
        fields.Count == 0
            ? approval
            : approval with
            {
                Job = approval.Job with { Payload = Mask(approval.Job.Payload, fields) },
                Lineage = [.. approval.Lineage.Select(v => v with { Payload = Mask(v.Payload, fields) })],
            };

    /// <summary>
    /// A payload diff as a reviewer may see it: computed over the original payloads (so a changed secret still shows as
    /// <c>changed</c>), its values masked where the path is a listed field or lies under one.
    /// </summary>
    public static IReadOnlyList<PayloadChange> Mask(IReadOnlyList<PayloadChange> changes, IReadOnlyList<string> fields) =>
        fields.Count == 0
            ? changes
            : [.. changes.Select(c => IsMasked(c.Path, fields)
                ? c with { Before = c.Before is null ? null : Marker, After = c.After is null ? null : Marker }
                : c)];

    /// <summary>Whether a diff path (<c>lines[0].iban</c>) is a listed field or lies under one.</summary>
    public static bool IsMasked(string path, IReadOnlyList<string> fields)
    {
        var segments = StripIndexes(path).Split('.', StringSplitOptions.RemoveEmptyEntries);
        foreach (var field in fields)
        {
            var listed = field.Split('.');
            if (listed.Length <= segments.Length
                && listed.Select((s, i) => string.Equals(s, segments[i], StringComparison.OrdinalIgnoreCase)).All(x => x))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>A short "path: before → after" account of a diff, masked, for audit details and notifications.</summary>
    public static string Describe(IReadOnlyList<PayloadChange> changes, IReadOnlyList<string> fields, int maxLength = 1000)
    {
        var text = string.Join("; ", Mask(changes, fields).Select(c => c.Change switch
        {
            "added" => $"{c.Path} added: {c.After}",
            "removed" => $"{c.Path} removed (was {c.Before})",
            _ => $"{c.Path}: {c.Before} → {c.After}",
        }));
        return text.Length <= maxLength ? text : text[..(maxLength - 1)] + "…";
    }

    private static string StripIndexes(string path)
    {
        var result = new System.Text.StringBuilder(path.Length);
        var depth = 0;
        foreach (var c in path)
        {
            if (c == '[')
            {
                depth++;
            }
            else if (c == ']')
            {
                depth--;
            }
            else if (depth == 0)
            {
                result.Append(c);
            }
        }
        return result.ToString();
    }

    private static bool MaskPath(JsonNode? node, string[] path, int at)
    {
        switch (node)
        {
            case JsonArray array:
                var any = false;
                foreach (var item in array)
                {
                    any |= MaskPath(item, path, at);
                }
                return any;
            case JsonObject obj:
                var masked = false;
                foreach (var name in obj.Select(p => p.Key).Where(k => string.Equals(k, path[at], StringComparison.OrdinalIgnoreCase)).ToList())
                {
                    if (at == path.Length - 1)
                    {
                        obj[name] = Marker;
                        masked = true;
                    }
                    else
                    {
                        masked |= MaskPath(obj[name], path, at + 1);
                    }
                }
                return masked;
            default:
                return false;
        }
    }
}
