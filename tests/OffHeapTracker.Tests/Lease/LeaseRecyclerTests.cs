using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Lease;

public sealed class LeaseRecyclerTests
{
    [Fact]
    public void AReturnedLease_IsNotReusedUntilSixteenMoreReturnsOnTheSameThread() => OnFreshThread(thread =>
    {
        var quarantined = new DirectBuffer(reusable: true);
        Assert.True(LeaseRecycler.Return(quarantined, thread));

        for (int i = 0; i < LeaseRecycler.Quarantine; i++)
        {
            DirectBuffer lease = LeaseRecycler.Rent(thread);
            Assert.NotSame(quarantined, lease);
            LeaseRecycler.Return(lease, thread);
        }

        // The quarantine is over: the next rent hands the oldest object back.
        Assert.Same(quarantined, LeaseRecycler.Rent(thread));
    });

    [Fact]
    public void RentAndReturn_OnOneThread_CirculatesExactlyTheQuarantinePlusOne() => OnFreshThread(thread =>
    {
        var seen = new HashSet<DirectBuffer>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < 1000; i++)
        {
            DirectBuffer lease = LeaseRecycler.Rent(thread);
            seen.Add(lease);
            LeaseRecycler.Return(lease, thread);
        }

        // A fresh thread's ring starts empty: it draws 17 objects from the shared pool while the ring fills, then
        // lends only from its own ring.
        Assert.Equal(LeaseRecycler.Quarantine + 1, seen.Count);
    });

    [Fact]
    public void ThreadThatFinalizedALease_RefusesToKeepLeaseObjects() => OnFreshThread(thread =>
    {
        LeaseRecycler.RefuseOnCurrentThread();

        Assert.False(LeaseRecycler.Return(new DirectBuffer(reusable: true), thread));
    });

    /// <summary>Runs <paramref name="test"/> on a new thread, whose per-thread root (and lease ring) starts empty, whatever earlier tests left on pool threads.</summary>
    private static void OnFreshThread(Action<ThreadRoot> test) => FreshThread.Run(() => test(ThreadRoot.Current));
}
