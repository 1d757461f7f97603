namespace ReviewerPortal.Features.Approvals;

/// <summary>
/// Which tenant an approval id belongs to, for the ids this instance made or looked up lately: a fixed table of slots
/// (a newer id takes an older one's slot), so a decision on an approval submitted here a moment ago skips the global
/// index read. The answer never changes for an id (an approval never moves tenant), so nothing is invalidated: a
/// miss reads the index, and a tenant the approval no longer lives in answers 404 when the approval is read there.
/// </summary>
internal sealed class RecentTenants
{
    private const int Slots = 8192; // a power of two; about 8,192 × 100 bytes
    private sealed record Entry(string Id, string Tenant);

    private readonly Entry?[] _slots = new Entry?[Slots];

    public void Remember(string id, string tenant) => Volatile.Write(ref _slots[SlotOf(id)], new Entry(id, tenant));

    /// <summary>Drops the id's entry (its index entry was pruned: its record is gone).</summary>
    public void Forget(string id)
    {
        var slot = SlotOf(id);
        if (Volatile.Read(ref _slots[slot]) is { } entry && entry.Id == id)
        {
            Interlocked.CompareExchange(ref _slots[slot], null, entry);
        }
    }

    public string? Find(string id) => Volatile.Read(ref _slots[SlotOf(id)]) is { } entry && entry.Id == id ? entry.Tenant : null;

    private static int SlotOf(string id) => id.GetHashCode() & (Slots - 1);
}
