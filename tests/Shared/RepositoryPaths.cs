namespace OffHeapTracker.Tests.Shared;

internal static class RepositoryPaths
{
    /// <summary>Gets the folder holding OffHeapTracker.sln, found by walking up from the test binaries.</summary>
    public static string Root
    {
        get
        {
            for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "OffHeapTracker.sln")))
                {
                    return dir.FullName;
                }
            }

            throw new InvalidOperationException("OffHeapTracker.sln not found above " + AppContext.BaseDirectory);
        }
    }
}
