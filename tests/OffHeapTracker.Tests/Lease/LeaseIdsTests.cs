namespace OffHeapTracker.Tests.Lease;

public sealed class LeaseIdsTests
{
    [Fact]
    public void Ids_AreUniqueAcrossThreads_AndIncreaseWithinEach()
    {
        const int Threads = 4;
        const int PerThread = 5 * LeaseIds.BlockSize;
        var ids = new long[Threads][];
        var workers = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() =>
            {
                ThreadRoot root = ThreadRoot.Current;
                ids[index] = [.. Enumerable.Range(0, PerThread).Select(_ => LeaseIds.Next(root))];
            });
            workers[t].Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        Assert.Equal(Threads * PerThread, ids.SelectMany(i => i).Distinct().Count());
        Assert.All(ids, own => Assert.True(own.Zip(own.Skip(1)).All(pair => pair.Second > pair.First), "ids increase within a thread"));
        Assert.All(ids.SelectMany(i => i), id => Assert.True(id > 0));
    }

    [Fact]
    public void OneThread_UsesItsReservedBlockInOrder()
    {
        long[] ids = new long[LeaseIds.BlockSize];
        var worker = new Thread(() =>
        {
            ThreadRoot root = ThreadRoot.Current;
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = LeaseIds.Next(root);
            }
        });
        worker.Start();
        worker.Join();

        // A fresh thread reserves one block and hands it out consecutively: one shared write per 256 rents.
        Assert.Equal(LeaseIds.BlockSize - 1, ids[^1] - ids[0]);
    }
}
