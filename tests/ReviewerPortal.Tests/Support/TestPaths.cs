namespace ReviewerPortal.Tests.Support;

/// <summary>Where the tests find the repository and the programs they run.</summary>
public static class TestPaths
{
    /// <summary>The repository's root: the folder above the test assembly that holds ReviewerPortal.sln.</summary>
    public static string Repo { get; } = FindRepo();

    /// <summary>The first <paramref name="name"/> on PATH, or null.</summary>
    public static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(dir => Path.Combine(dir, name))
            .FirstOrDefault(File.Exists);

    private static string FindRepo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ReviewerPortal.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("ReviewerPortal.sln not found above " + AppContext.BaseDirectory);
    }
}
