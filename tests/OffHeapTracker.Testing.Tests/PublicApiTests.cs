using OffHeapTracker.Testing;

namespace OffHeapTracker.Testing.Tests;

/// <summary>Fails when the package's public surface changes without the approved file being updated with it.</summary>
/// <remarks>To accept a deliberate change, run with OFFHEAPTRACKER_APPROVE_API=1 and commit the updated file.</remarks>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_MatchesTheApprovedFile() =>
        ApprovedPublicApi.Verify(typeof(BufferTestScope).Assembly, "OffHeapTracker.Testing.Tests", "OffHeapTracker.Testing.approved.txt");
}
