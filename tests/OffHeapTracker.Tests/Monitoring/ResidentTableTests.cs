using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring;

public sealed class ResidentTableTests
{
    [Fact]
    public void TryRemove_WithTheTokenTryAddGave_RemovesThatRecordOnly()
    {
        var table = new ResidentTable(maxRecords: 10);
        Assert.True(table.TryAdd(1, Record(size: 100), out long first));
        Assert.True(table.TryAdd(2, Record(size: 200), out long second));
        Assert.NotEqual(first, second);

        Assert.True(table.TryRemove(1, first));

        KeyValuePair<long, ResidentRecord> left = Assert.Single(table);
        Assert.Equal(2, left.Key);
        Assert.Equal(200, left.Value.AllocateSize);
    }

    [Fact]
    public void AFreedSlot_IsReused_AndAStaleTokenCannotRemoveItsNewRecord()
    {
        var table = new ResidentTable(maxRecords: 1);
        Assert.True(table.TryAdd(1, Record(size: 100), out long token));
        Assert.True(table.TryRemove(1, token));
        Assert.False(table.TryRemove(1, token), "a token removes its record once");

        // One slot in all: the next record takes the same slot, so the same token value.
        Assert.True(table.TryAdd(2, Record(size: 200), out long reused));
        Assert.Equal(token, reused);
        Assert.False(table.TryRemove(1, token), "the stale token named the slot, but not the record now in it");
        Assert.Equal(2, Assert.Single(table).Key);
    }

    [Fact]
    public void TokensFromAnotherTable_OrMadeUp_AreIgnored()
    {
        var dropped = new ResidentTable(maxRecords: 4);
        var live = new ResidentTable(maxRecords: 4);
        Assert.True(dropped.TryAdd(7, Record(size: 1), out long old));
        Assert.True(live.TryAdd(7, Record(size: 1), out _));

        Assert.False(live.TryRemove(7, old));
        Assert.False(live.TryRemove(7, 0));
        Assert.False(live.TryRemove(7, long.MaxValue));
        Assert.False(live.TryRemove(7, -1));
        Assert.Single(live);
    }

    [Fact]
    public void AFullTable_RefusesRecords_UntilOneIsRemoved()
    {
        var table = new ResidentTable(maxRecords: 600);
        var tokens = new long[600];
        for (int i = 0; i < 600; i++)
        {
            Assert.True(table.TryAdd(i + 1, Record(size: i), out tokens[i]));
        }

        Assert.True(table.IsFull);
        Assert.False(table.TryAdd(1000, Record(size: 1), out long refused));
        Assert.Equal(0, refused);
        Assert.Equal(600, table.Count);

        Assert.True(table.TryRemove(300, tokens[299]));
        Assert.False(table.IsFull);
        Assert.True(table.TryAdd(1001, Record(size: 1), out _));
        Assert.Equal(600, table.Count);
    }

    [Fact]
    public void RecordsAddedWithoutAToken_AreRemovedById()
    {
        var table = new ResidentTable(maxRecords: 10);
        Assert.True(table.TryAddWithoutToken(5, Record(size: 1)));
        Assert.True(table.TryAdd(6, Record(size: 2), out _));

        Assert.False(table.TryRemoveWithoutToken(6), "only records added without a token are found by id");
        Assert.True(table.TryRemoveWithoutToken(5));
        Assert.False(table.TryRemoveWithoutToken(5));
        Assert.Equal(6, Assert.Single(table).Key);
    }

    [Fact]
    public async Task ConcurrentAddsAndRemoves_NeverLoseOrShareASlot_AndAWalkNeverSeesATornRecord()
    {
        // Each writer owns its ids and stamps every field of a record with a value derived from the id, so a
        // record copied while its slot was being rewritten would show fields that disagree with its id.
        var table = new ResidentTable(maxRecords: 4096);
        const int Writers = 4;
        const int PerWriter = 200_000;
        using var stop = new CancellationTokenSource();
        long walked = 0;
        // A thread of its own: on a busy machine a thread-pool task may not start before the writers finish.
        var reader = Task.Factory.StartNew(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                foreach ((long id, ResidentRecord record) in table)
                {
                    Assert.Equal(Size(id), record.AllocateSize);
                    Assert.Equal(Size(id) * 2, record.ActualSize);
                    Assert.Equal(id, record.Timestamp);
                    Assert.Equal(id.ToString(System.Globalization.CultureInfo.InvariantCulture), record.Context);
                    Interlocked.Increment(ref walked);
                }
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        Parallel.For(0, Writers, writer =>
        {
            var held = new Queue<(long Id, long Token)>();
            for (int i = 1; i <= PerWriter; i++)
            {
                long id = (writer * (long)PerWriter) + i;
                Assert.True(table.TryAdd(id, Record(id), out long token));
                held.Enqueue((id, token));
                if (held.Count > 100)
                {
                    (long oldId, long oldToken) = held.Dequeue();
                    Assert.True(table.TryRemove(oldId, oldToken), "a record vanished, or its slot was given to another");
                }
            }

            // Records stay out until the reader has walked some (bounded): otherwise the test could prove nothing.
            SpinWait.SpinUntil(() => Interlocked.Read(ref walked) > 0, TimeSpan.FromSeconds(30));
            while (held.TryDequeue(out (long Id, long Token) last))
            {
                Assert.True(table.TryRemove(last.Id, last.Token));
            }
        });
        stop.Cancel();
        await reader;

        Assert.Empty(table);
        Assert.True(walked > 0, "the reader never saw a record: the test proved nothing");
    }

    private static int Size(long id) => (int)(id % 100_000);

    private static ResidentRecord Record(long id) => new(
        Address: (nint)id, Timestamp: id, AllocateSize: Size(id), ActualSize: Size(id) * 2, BufferType: BufferType.Normal,
        ThreadId: 1, PoolName: "p", PoolId: 1, Context: id.ToString(System.Globalization.CultureInfo.InvariantCulture), Stack: null, StackWeight: 0);

    private static ResidentRecord Record(int size) => new(
        Address: 0, Timestamp: 1, AllocateSize: size, ActualSize: size, BufferType: BufferType.Normal,
        ThreadId: 1, PoolName: "p", PoolId: 1, Context: null, Stack: null, StackWeight: 0);
}
