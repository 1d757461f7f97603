using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>
/// Every key name the app uses. The keys of one tenant share the hash tag <c>{tenant}</c>, so every
/// multi-key script touches a single Redis Cluster slot.
/// </summary>
public static class RedisKeys
{
    private const string Prefix = "rp:";

    /// <summary>The set of all tenant ids (not tenant-scoped).</summary>
    public static RedisKey Tenants => Prefix + "tenants";

    /// <summary>Approval id → tenant, so a reviewer's call can find the tenant of an approval (not tenant-scoped).</summary>
    public static RedisKey ApprovalIndex => Prefix + "approval-index";

    /// <summary>The channel every transition is announced on.</summary>
    public static RedisChannel Changes { get; } = RedisChannel.Literal(Prefix + "changes");

    /// <summary>Failed sign-ins in the current window, per source (<c>addr</c>, <c>name</c> or <c>pair</c>) and its hashed id (not tenant-scoped).</summary>
    public static RedisKey SignInFailures(string scope, string id) => Prefix + "signin:" + scope + ":" + id;

    /// <summary>Every account's out-of-office delegation: a hash of user name → JSON (not tenant-scoped).</summary>
    public static RedisKey Delegations => Prefix + "delegations";

    private static string T(string tenant) => $"{Prefix}{{{tenant}}}:";

    public static RedisKey Approval(string tenant, string id) => T(tenant) + "appr:" + id;
    public static RedisKey Job(string tenant, string id) => T(tenant) + "job:" + id;
    public static RedisKey StateSet(string tenant, string state) => T(tenant) + "q:" + state;
    public static RedisKey Timers(string tenant) => T(tenant) + "timers";
    public static RedisKey Idempotency(string tenant, string key) => T(tenant) + "idem:" + key;

    /// <summary>
    /// The key a script is given for a request's idempotency key; for a request without one, a key no agent's key can
    /// name (every agent key is under <c>idem:</c>, and <c>-</c> is a legal key), which the scripts never write.
    /// </summary>
    public static RedisKey IdempotencyOrNone(string tenant, string? key) => key is null ? T(tenant) + "idem-none" : Idempotency(tenant, key);
    public static RedisKey AuditOutbox(string tenant) => T(tenant) + "auditq";
    public static RedisKey Lock(string tenant, string id) => T(tenant) + "lock:" + id;
    public static RedisKey Throttle(string tenant, string ruleId) => T(tenant) + "throttle:" + ruleId;
    public static RedisKey Settings(string tenant) => T(tenant) + "settings";
    public static RedisKey DispatchOutbox(string tenant) => T(tenant) + "dispatch";
    public static RedisKey Unacknowledged(string tenant) => T(tenant) + "unacked";
    public static RedisKey JobIndex(string tenant) => T(tenant) + "jobs";
    public static RedisKey Sink(string tenant, string key) => T(tenant) + "sink:" + key;
    public static RedisKey SigningKeys(string tenant) => T(tenant) + "keys";
    public static RedisKey SigningKeyCurrent(string tenant) => T(tenant) + "keys:current";
    public static RedisKey Stats(string tenant) => T(tenant) + "stats";

    /// <summary>The tenant's action-link keys (hash: <c>current</c> → key id, key id → protected key).</summary>
    public static RedisKey ActionLinkKeys(string tenant) => T(tenant) + "linkkeys";

    /// <summary>An action link that was used (SET NX until the link's expiry): each link decides once.</summary>
    public static RedisKey ActionLinkUsed(string tenant, string tokenId) => T(tenant) + "linkused:" + tokenId;
    public static RedisKey SideEffect(string tenant, string approvalId, string actionId) => T(tenant) + "fx:" + approvalId + ":" + actionId;
    public static RedisKey PolicyCurrent(string tenant) => T(tenant) + "policy:current";
    public static RedisKey PolicyVersion(string tenant, string snapshot) => T(tenant) + "policy:v:" + snapshot;
    public static RedisKey PolicyHistory(string tenant) => T(tenant) + "policy:history";
    public static RedisKey PolicyCounter(string tenant) => T(tenant) + "policy:seq";

    public static RedisKey NotifyOutbox(string tenant) => T(tenant) + "notify";
    public static RedisKey NotifyBodies(string tenant) => T(tenant) + "notify:body";
    public static RedisKey NotifyFailed(string tenant) => T(tenant) + "notify:failed";
    public static RedisKey Case(string tenant, string id) => T(tenant) + "case:" + id;
    public static RedisKey Cases(string tenant) => T(tenant) + "cases";

    /// <summary>The tenant's latest signed audit checkpoint (seq, at, the signed checkpoint).</summary>
    public static RedisKey AuditCheckpoint(string tenant) => T(tenant) + "audit:checkpoint";

    /// <summary>The tenant's signed checkpoints not yet in the checkpoint store (sequence → signed JSON): the store's outbox.</summary>
    public static RedisKey AuditCheckpointPending(string tenant) => T(tenant) + "audit:checkpoint:pending";

    /// <summary>Held (with a lease) by the one instance pushing the tenant's pending checkpoints to its log.</summary>
    public static RedisKey AuditCheckpointPushing(string tenant) => T(tenant) + "audit:checkpoint:pushing";

    /// <summary>The audit chain's MAC key, protected with Data Protection (not tenant-scoped).</summary>
    public static RedisKey AuditChainKey => Prefix + "audit:chain-key:v1";

    /// <summary>Timer member that expires an approval at its deadline.</summary>
    public static string ExpireTimer(string approvalId) => "expire|" + approvalId;

    /// <summary>Timer member of an approval's next reminder, escalation or timeout.</summary>
    public static string StepTimer(string approvalId) => "step|" + approvalId;

    /// <summary>Timer member that closes an approval's resubmission window.</summary>
    public static string ResubmitTimer(string approvalId) => "resubmit|" + approvalId;

    /// <summary>Timer member of a case's next deadline (document request or window).</summary>
    public static string CaseTimer(string caseId) => "case|" + caseId;

    /// <summary>Every timer an approval can have.</summary>
    public static string[] ApprovalTimers(string approvalId) => [ExpireTimer(approvalId), StepTimer(approvalId), ResubmitTimer(approvalId)];
}
