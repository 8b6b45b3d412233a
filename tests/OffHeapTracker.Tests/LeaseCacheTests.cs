namespace OffHeapTracker.Tests;

public sealed class LeaseCacheTests
{
    [Fact]
    public void AReturnedLease_IsNotReusedUntilSixteenMoreReturnsOnTheSameThread()
    {
        // The cache is thread-local and shared by every pool; whatever earlier tests left in it sits ahead of us.
        var quarantined = new DirectBuffer(reusable: true);
        LeaseCache.Return(quarantined);

        for (int i = 0; i < LeaseCache.Quarantine; i++)
        {
            DirectBuffer lease = LeaseCache.Rent();
            Assert.NotSame(quarantined, lease);
            LeaseCache.Return(lease);
        }
    }

    [Fact]
    public void RentAndReturn_OnOneThread_ReusesObjects()
    {
        var seen = new HashSet<DirectBuffer>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 1000; i++)
        {
            DirectBuffer lease = LeaseCache.Rent();
            seen.Add(lease);
            LeaseCache.Return(lease);
        }

        // Quarantine plus one in circulation, give or take what the shared pool lent while the ring filled.
        Assert.InRange(seen.Count, LeaseCache.Quarantine + 1, LeaseCache.Quarantine + 2 + LeaseCache.Capacity);
    }
}
