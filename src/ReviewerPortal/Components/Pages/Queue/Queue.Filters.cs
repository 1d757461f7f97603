using ReviewerPortal.Features.Approvals;
using ReviewerPortal.Features.Policies;

namespace ReviewerPortal.Components.Pages.Queue;

/// <summary>The queue's filters: search, priority, env and age, matched against the oldest pending (masked first).</summary>
public partial class Queue
{
    private static readonly TimeSpan TypingPause = TimeSpan.FromMilliseconds(250);
    private CancellationTokenSource? _typing;

    /// <summary>"" from the select's first option is no filter.</summary>
    private string Priority
    {
        get => _priority ?? "";
        set => _priority = string.IsNullOrEmpty(value) ? null : value;
    }

    private string Age
    {
        get => _age ?? "";
        set => _age = string.IsNullOrEmpty(value) ? null : value;
    }

    /// <summary>Search and env filter once typing pauses for <see cref="TypingPause"/>, not on every key.</summary>
    private async Task TypedAsync()
    {
        _typing?.Cancel();
        _typing?.Dispose();
        var typing = _typing = new CancellationTokenSource();
        try
        {
            await Task.Delay(TypingPause, Time, typing.Token);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        await ApplyFilterAsync();
    }

    private async Task ApplyFilterAsync()
    {
        // Matched now, not when the rows load, so the bulk bar's "select all matching" counts what is shown.
        _filtered = Filtering ? await FilterAsync() : null;
        if (_virtualize is not null)
        {
            await _virtualize.RefreshDataAsync();
        }
    }

    private async Task<List<Approval>> FilterAsync()
    {
        var matches = new List<Approval>();
        for (var start = 0; start < FilterScanLimit; start += 500)
        {
            // Masked before matching: a search must not find (or probe for) a value the tenant hides.
            var chunk = await MaskedAsync(await Store.PendingRangeAsync(Tenant!, start, 500));
            matches.AddRange(chunk.Where(Matches));
            if (chunk.Count < 500)
            {
                break;
            }
        }
        return matches;
    }

    private bool Matches(Approval a)
    {
        if (_age is not null && DurationText.TryParse(_age, out var age) && Now - (a.VersionSubmittedAt ?? a.CreatedAt) < age)
        {
            return false;
        }
        if (_priority is not null && a.Job.Priority != _priority)
        {
            return false;
        }
        if (!string.IsNullOrWhiteSpace(_env) && !a.Job.Env.Contains(_env.Trim(), StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (string.IsNullOrWhiteSpace(_search))
        {
            return true;
        }
        var q = _search.Trim();
        return a.Job.Topic.Contains(q, StringComparison.OrdinalIgnoreCase)
               || a.Submitter.Contains(q, StringComparison.OrdinalIgnoreCase)
               || a.Id.Contains(q, StringComparison.OrdinalIgnoreCase)
               || a.Job.Payload.GetRawText().Contains(q, StringComparison.OrdinalIgnoreCase);
    }
}
