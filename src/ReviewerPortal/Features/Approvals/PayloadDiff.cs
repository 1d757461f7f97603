using System.Text.Json;

namespace ReviewerPortal.Features.Approvals;

/// <summary>One leaf of a payload that differs between two versions: <c>added</c>, <c>removed</c> or <c>changed</c>.</summary>
public sealed record PayloadChange(string Path, string Change, string? Before, string? After);

/// <summary>Compares two job payloads leaf by leaf (JSON paths such as <c>lines[0].amount</c>).</summary>
public static class PayloadDiff
{
    public static IReadOnlyList<PayloadChange> Compare(JsonElement before, JsonElement after)
    {
        var a = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var b = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Flatten(before, "", a);
        Flatten(after, "", b);
        var changes = new List<PayloadChange>();
        foreach (var path in a.Keys.Union(b.Keys).Order(StringComparer.Ordinal))
        {
            var had = a.TryGetValue(path, out var was);
            var has = b.TryGetValue(path, out var now);
            if (had && !has)
            {
                changes.Add(new PayloadChange(path, "removed", was, null));
            }
            else if (!had && has)
            {
                changes.Add(new PayloadChange(path, "added", null, now));
            }
            else if (was != now)
            {
                changes.Add(new PayloadChange(path, "changed", was, now));
            }
        }
        return changes;
    }

    private static void Flatten(JsonElement e, string path, IDictionary<string, string> into)
    {
        switch (e.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var p in e.EnumerateObject())
                {
                    Flatten(p.Value, path.Length == 0 ? p.Name : $"{path}.{p.Name}", into);
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in e.EnumerateArray())
                {
                    Flatten(item, $"{path}[{i++}]", into);
                }
                break;
            case JsonValueKind.Undefined:
                break;
            default:
                into[path.Length == 0 ? "$" : path] = e.GetRawText();
                break;
        }
    }
}
