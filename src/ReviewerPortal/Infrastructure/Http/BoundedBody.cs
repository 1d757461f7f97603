using System.Buffers;

namespace ReviewerPortal.Infrastructure.Http;

/// <summary>
/// Reads a request body of at most a route's limit, however it is sent: a declared Content-Length over the limit is
/// refused before anything is read, and a body sent chunked is read no further than the limit and one byte. The
/// buffer is rented (sized by Content-Length when it is sent) and given back after <c>use</c>, so a request allocates
/// none of it: what <c>use</c> answers must not keep the bytes (strings and a JsonElement copy them).
/// </summary>
public static class BoundedBody
{
    /// <returns><c>Fits</c> false, and nothing read into <c>use</c>, when the body is larger than <paramref name="maxBytes"/>.</returns>
    public static async Task<(bool Fits, T? Value)> ReadAsync<T>(HttpRequest request, long maxBytes, Func<ReadOnlySpan<byte>, T> use,
        CancellationToken cancellationToken)
    {
        if (request.ContentLength > maxBytes)
        {
            return (false, default);
        }
        var limit = maxBytes + 1;
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(request.ContentLength is > 0 and var length ? length + 1 : 4096, limit));
        try
        {
            var filled = 0;
            while (true)
            {
                if (filled == buffer.Length)
                {
                    var larger = ArrayPool<byte>.Shared.Rent((int)Math.Min(buffer.Length * 2L, limit));
                    buffer.AsSpan(0, filled).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }
                var read = await request.Body.ReadAsync(buffer.AsMemory(filled, (int)Math.Min(buffer.Length - filled, limit - filled)), cancellationToken);
                if (read == 0)
                {
                    return (true, use(buffer.AsSpan(0, filled)));
                }
                filled += read;
                if (filled > maxBytes)
                {
                    return (false, default);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
