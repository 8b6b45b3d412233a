namespace OffHeapTracker.Tests;

/// <summary>Fails when the public surface changes without the approved file being updated with it.</summary>
/// <remarks>To accept a deliberate change, run with OFFHEAPTRACKER_APPROVE_API=1 and commit the updated file.</remarks>
public sealed class PublicApiTests
{
    [Fact]
    public void PublicApi_MatchesTheApprovedFile() =>
        ApprovedPublicApi.Verify(typeof(DirectBufferPool).Assembly, "OffHeapTracker.Tests", "OffHeapTracker.approved.txt");
}
