using System.Security.Cryptography;

namespace ReviewerPortal.Features.Approvals;

/// <summary>Time-ordered ids (48-bit milliseconds + 80 random bits, Crockford base32): <c>apr_01J…</c>, <c>job_01J…</c>.</summary>
public static class ApprovalIds
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

    public static string NewApprovalId(DateTimeOffset now) => "apr_" + NewUlid(now);

    public static string NewJobId(DateTimeOffset now) => "job_" + NewUlid(now);

    public static string NewCaseId(DateTimeOffset now) => "cas_" + NewUlid(now);

    public static bool LooksLikeCase(string? id) =>
        id is { Length: 30 } && id.StartsWith("cas_", StringComparison.Ordinal) && id.AsSpan(4).IndexOfAnyExcept(Alphabet) < 0;

    public static bool LooksValid(string? id) =>
        id is { Length: 30 } && (id.StartsWith("apr_", StringComparison.Ordinal) || id.StartsWith("job_", StringComparison.Ordinal))
        && id.AsSpan(4).IndexOfAnyExcept(Alphabet) < 0;

    /// <summary>When an id was made (its 48-bit millisecond prefix); null for a string that is no id of ours.</summary>
    public static DateTimeOffset? CreatedAt(string? id)
    {
        if (id is not { Length: 30 } || id[3] != '_' || id.AsSpan(4).IndexOfAnyExcept(Alphabet) >= 0)
        {
            return null;
        }
        UInt128 value = 0;
        foreach (var c in id.AsSpan(4))
        {
            value = value << 5 | (uint)Alphabet.IndexOf(c);
        }
        return DateTimeOffset.FromUnixTimeMilliseconds((long)(ulong)(value >> 80));
    }

    private static readonly Lock Gate = new();
    private static UInt128 _last;

    private static string NewUlid(DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[16];
        RandomNumberGenerator.Fill(random[6..]);
        var ms = (ulong)now.ToUnixTimeMilliseconds() & 0xFFFF_FFFF_FFFF;
        var value = new UInt128(ms << 16 | System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(random[6..]),
            System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(random[8..]));
        lock (Gate)
        {
            // Monotonic within this process: ids made in the same millisecond still sort in creation order.
            if (value <= _last && (ulong)(_last >> 80) == ms)
            {
                value = _last + 1;
            }
            _last = value;
        }
        Span<char> chars = stackalloc char[26];
        // 128 bits → 26 base32 characters, most significant first.
        for (var i = 25; i >= 0; i--)
        {
            chars[i] = Alphabet[(int)(value & 31)];
            value >>= 5;
        }
        return new string(chars);
    }
}
