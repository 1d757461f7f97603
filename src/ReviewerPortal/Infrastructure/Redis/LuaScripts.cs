using System.Collections.Concurrent;
using StackExchange.Redis;

namespace ReviewerPortal.Infrastructure.Redis;

/// <summary>The Lua scripts shipped as embedded resources, each kept beside the use case that runs it (Features/**/*.lua; the lock's own in Infrastructure/Redis/Scripts).</summary>
public static class LuaScripts
{
    private static readonly ConcurrentDictionary<string, string> Cache = new();

    public static string Create => Load("create");
    public static string SubmitReads => Load("submit_reads");
    public static string ReadWithSettings => Load("read_with_settings");
    public static string Transition => Load("transition");
    public static string Unlock => Load("unlock");
    public static string Throttle => Load("throttle");
    public static string PublishPolicy => Load("publish_policy");
    public static string HashSetAudited => Load("hset_audited");
    public static string DispatchPublish => Load("dispatch_publish");
    public static string DispatchResult => Load("dispatch_result");
    public static string DispatchAttempt => Load("dispatch_attempt");
    public static string DispatchFail => Load("dispatch_fail");
    public static string DispatchStuck => Load("dispatch_stuck");
    public static string DispatchPark => Load("dispatch_park");
    public static string DispatchUnpark => Load("dispatch_unpark");
    public static string DispatchForget => Load("dispatch_forget");
    public static string DispatchRelink => Load("dispatch_relink");
    public static string CaseUpdate => Load("case_update");
    public static string TimerMove => Load("timer_move");
    public static string OutboxRemove => Load("outbox_remove");
    public static string SignInFail => Load("signin_fail");
    public static string ImportApproval => Load("import_approval");
    public static string ImportCase => Load("import_case");
    public static string ImportPolicy => Load("import_policy");

    private static string Load(string name) => Cache.GetOrAdd(name, static n =>
    {
        using var stream = typeof(LuaScripts).Assembly.GetManifestResourceStream($"ReviewerPortal.Scripts.{n}.lua")
            ?? throw new InvalidOperationException($"Lua script '{n}' is not embedded.");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    });

    /// <summary>Reads a script's reply, an array whose first element is a status word.</summary>
    public static (string Status, string? Value) Status(RedisResult result)
    {
        var items = (RedisResult[])result!;
        return ((string)items[0]!, items.Length > 1 ? (string?)items[1] : null);
    }
}
