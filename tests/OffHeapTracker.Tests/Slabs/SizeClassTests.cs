using OffHeapTracker.Slabs;
using OffHeapTracker.Tests.Support;

namespace OffHeapTracker.Tests.Slabs;

public sealed unsafe class SizeClassTests
{
    [Theory]
    [InlineData(0, 0)]
    [InlineData(512, 0)]
    [InlineData(513, 1)]
    [InlineData(4096, 3)]
    [InlineData(4097, 4)]
    [InlineData(1 << 24, 15)]
    public void IndexOf_PicksTheSmallestBlockThatFits(int size, int expected)
    {
        Assert.Equal(expected, SizeClasses.IndexOf(size));
        Assert.True(SizeClasses.BlockSizeOf(expected) >= size);
    }

    [Fact]
    public void GrowAndPop_RespectsTheBudget_AndReleaseFreesEverySlab()
    {
        var allocator = new TestAllocator();
        var budget = new CapacityBudget(2 << 20);
        var blocks = new SizeClass(1 << 20, allocator);

        Assert.Equal(0, blocks.GrowAndPop(budget, s_stamp, out byte* first));
        Assert.Equal(1, blocks.GrowAndPop(budget, s_stamp, out byte* second));
        Assert.Equal(-1, blocks.GrowAndPop(budget, s_stamp, out _));
        Assert.Equal(2 << 20, budget.ReservedBytes);
        Assert.True(first != second);

        ReturnBlock(blocks, 1);
        Assert.Equal(1, blocks.TryPop(s_stamp, out byte* again));
        Assert.True(again == second);

        blocks.Release(budget);
        Assert.Equal(0, allocator.LiveCount);
        Assert.Equal(0, budget.ReservedBytes);
    }

    [Fact]
    public void ConcurrentPushAndPop_NeverHandsOneBlockToTwoThreads()
    {
        var allocator = new TestAllocator();
        var budget = new CapacityBudget(long.MaxValue);
        var blocks = new SizeClass(512, allocator);
        var owners = new int[2048 * 4];
        int duplicates = 0;

        Parallel.For(0, 4, worker =>
        {
            var mine = new Stack<int>();
            for (int i = 0; i < 50_000; i++)
            {
                if (mine.Count < 8 && (i % 3 != 2 || mine.Count == 0))
                {
                    int index = blocks.TryPop(s_stamp, out _);
                    if (index < 0)
                    {
                        index = blocks.GrowAndPop(budget, s_stamp, out _);
                    }

                    if (Interlocked.Exchange(ref owners[index], 1) != 0)
                    {
                        Interlocked.Increment(ref duplicates);
                    }

                    mine.Push(index);
                }
                else
                {
                    int index = mine.Pop();
                    Volatile.Write(ref owners[index], 0);
                    ReturnBlock(blocks, index);
                }
            }

            while (mine.TryPop(out int index))
            {
                Volatile.Write(ref owners[index], 0);
                ReturnBlock(blocks, index);
            }
        });

        Assert.Equal(0, duplicates);

        // Every block is back: popping them all yields each index once.
        var seen = new HashSet<int>();
        while (blocks.TryPop(s_stamp, out _) is int index and >= 0)
        {
            Assert.True(seen.Add(index));
        }

        Assert.Equal(blocks.SlabCount * 2048, seen.Count);
        blocks.Release(budget);
    }

    [Fact]
    public void Trim_FreesOnlySlabsThatStayedWhollyFreeForTwoPasses_AndGrowthReusesTheirSlots()
    {
        var allocator = new TestAllocator();
        var budget = new CapacityBudget(long.MaxValue);
        var blocks = new SizeClass(1 << 19, allocator); // two blocks per 1 MiB slab

        int a = blocks.GrowAndPop(budget, s_stamp, out _);
        int b = blocks.TryPop(s_stamp, out _);
        int c = blocks.GrowAndPop(budget, s_stamp, out _);
        Assert.Equal(2, allocator.LiveCount);

        // Slab 0 wholly free, slab 1 half rented.
        ReturnBlock(blocks, a);
        ReturnBlock(blocks, b);
        Assert.Equal(0, blocks.Trim(budget));
        Assert.Equal(1 << 20, blocks.Trim(budget));
        Assert.Equal(1, allocator.LiveCount);
        Assert.Equal(1 << 20, budget.ReservedBytes);

        // The free list now holds only slab 1's free block, and growth reuses slab 0's slot.
        int d = blocks.TryPop(s_stamp, out _);
        Assert.Equal(c ^ 1, d);
        Assert.Equal(-1, blocks.TryPop(s_stamp, out _));
        Assert.Equal(0, blocks.GrowAndPop(budget, s_stamp, out byte* reused) >> 1);
        Assert.True(reused != null);
        Assert.Equal(2, blocks.SlabCount);
        blocks.Release(budget);
        Assert.Equal(0, allocator.LiveCount);
    }

    [Fact]
    public void VisitRented_SeesEveryStampedBlock_AndNoneThatWasCleared()
    {
        var allocator = new TestAllocator();
        var blocks = new SizeClass(64 * 1024, allocator);
        var budget = new CapacityBudget(4 << 20);
        long normalOld = RentStamp.Encode(100, BufferType.Normal);
        long poolNew = RentStamp.Encode(200, BufferType.Pool);
        int a = blocks.GrowAndPop(budget, normalOld, out _);
        int b = blocks.TryPop(poolNew, out _);
        int c = blocks.TryPop(normalOld, out _);
        ReturnBlock(blocks, c);

        var seen = new StampCollector { Stamps = [] };
        blocks.VisitRented(ref seen);

        Assert.Equal(new[] { (normalOld, 64 * 1024), (poolNew, 64 * 1024) }, seen.Stamps.Order());
        Assert.Equal(BufferType.Pool, RentStamp.TypeOf(poolNew));
        Assert.Equal(200, RentStamp.TimestampOf(poolNew));
        ReturnBlock(blocks, a);
        ReturnBlock(blocks, b);
        blocks.Release(budget);
    }

    // Stamps are what the pool passes; their value does not matter to the free list.
    private static readonly long s_stamp = RentStamp.Encode(1, BufferType.Normal);

    // What the pool does on a return: unstamp, then push.
    private static void ReturnBlock(SizeClass blocks, int index)
    {
        blocks.ClearStamp(index);
        blocks.Push(index);
    }

    private struct StampCollector : IRentStampVisitor
    {
        public List<(long Stamp, int Bytes)> Stamps;

        public readonly void Visit(long stamp, int bytes) => Stamps.Add((stamp, bytes));
    }
}
