using System.ComponentModel.DataAnnotations;
using Npgsql;

namespace ReviewerPortal.Infrastructure.Storage;

public sealed class StorageOptions : IValidatableObject
{
    public const string Section = "Storage";
    public const string Sqlite = "sqlite";
    public const string Postgres = "postgres";

    /// <summary>Where accounts, API keys, the audit history and the Data Protection key ring live: <c>sqlite</c> (default) or <c>postgres</c>.</summary>
    public string Provider { get; set; } = Sqlite;

    /// <summary>Folder for the embedded Redis data and the SQLite database; relative to the content root.</summary>
    [Required]
    public string DataPath { get; set; } = "data";

    /// <summary>
    /// SQLite: connection string, empty uses <c>{DataPath}/reviewerportal.db</c>. PostgreSQL: the Npgsql connection
    /// string (required).
    /// </summary>
    public string? Database { get; set; }

    /// <summary>How long decided approvals stay readable in Redis (their audit history stays forever).</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan DecidedRetention { get; set; } = TimeSpan.FromDays(30);

    public bool IsPostgres => string.Equals(Provider, Postgres, StringComparison.OrdinalIgnoreCase);

    /// <summary>The store's name in health reports and 503 answers.</summary>
    public string StoreName => IsPostgres ? Postgres : Sqlite;

    public string ResolveDataPath(string contentRoot) => Path.GetFullPath(DataPath, contentRoot);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!IsPostgres && !string.Equals(Provider, Sqlite, StringComparison.OrdinalIgnoreCase))
        {
            yield return new ValidationResult($"Storage:Provider must be '{Sqlite}' or '{Postgres}'.", [nameof(Provider)]);
            yield break;
        }
        if (!IsPostgres)
        {
            yield break;
        }
        if (string.IsNullOrWhiteSpace(Database))
        {
            yield return new ValidationResult(
                "Storage:Database is required with Storage:Provider=postgres: an Npgsql connection string " +
                "(Host=…;Port=5432;Database=…;Username=…;Password=…).", [nameof(Database)]);
            yield break;
        }
        string? error = null;
        try
        {
            var parsed = new NpgsqlConnectionStringBuilder(Database);
            if (string.IsNullOrWhiteSpace(parsed.Host))
            {
                error = "Storage:Database names no Host.";
            }
        }
        catch (ArgumentException ex)
        {
            // The message names the keyword at fault, never the value (it may hold a password).
            error = $"Storage:Database is not an Npgsql connection string ({ex.Message}).";
        }
        if (error is not null)
        {
            yield return new ValidationResult(error, [nameof(Database)]);
        }
    }
}
