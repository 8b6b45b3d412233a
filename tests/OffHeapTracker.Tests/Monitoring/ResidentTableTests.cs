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
    public void AnIdNoRecordHas_PassedWithAFreeSlotsToken_CannotFreeTheSlotAgain()
    {
        // A free slot's id is 0. A caller of IBufferMonitor.OnReturned(id, token) who passes 0 (or any id no
        // record can have) with the slot's old token must not "remove" it: that would free the slot twice and hand
        // it to two writers.
        var table = new ResidentTable(maxRecords: 2);
        Assert.True(table.TryAdd(1, Record(size: 1), out long first));
        Assert.True(table.TryAdd(2, Record(size: 2), out long second));
        Assert.True(table.TryRemove(1, first));
        Assert.True(table.TryRemove(2, second));

        foreach (long forged in new long[] { 0, -1, -2, -3, long.MinValue })
        {
            Assert.False(table.TryRemove(forged, first), $"id {forged} freed the first slot again");
            Assert.False(table.TryRemove(forged, second), $"id {forged} freed the second slot again");
        }

        Assert.True(table.TryAdd(3, Record(size: 3), out long third));
        Assert.True(table.TryAdd(4, Record(size: 4), out long fourth));
        Assert.NotEqual(third, fourth);
        Assert.False(table.TryAdd(5, Record(size: 5), out _), "two slots in all: a third record means a slot was freed twice");
        Assert.Equal([3L, 4L], table.Select(pair => pair.Key).Order());
    }

    [Fact]
    public void AFreedSlotsLastRecord_IsNeverSeenByAWalk_AndItsSlotIsReused()
    {
        // A removal leaves the record's fields in the slot (only the id changes), so a walk must tell a freed slot
        // by its id alone.
        var table = new ResidentTable(maxRecords: 3);
        Assert.True(table.TryAdd(1, Record(size: 10), out long first));
        Assert.True(table.TryAdd(2, Record(size: 20), out long second));
        Assert.True(table.TryAdd(3, Record(size: 30), out _));
        Assert.True(table.TryRemove(1, first));
        Assert.True(table.TryRemove(2, second));

        KeyValuePair<long, ResidentRecord> left = Assert.Single(table);
        Assert.Equal((3L, 30), (left.Key, left.Value.AllocateSize));
        Assert.Equal(1, table.Count);

        // Last in, first out: the second slot comes back first, then the first, and the record is the new one.
        Assert.True(table.TryAdd(4, Record(size: 40), out long reused));
        Assert.Equal(second, reused);
        Assert.True(table.TryAdd(5, Record(size: 50), out long reusedToo));
        Assert.Equal(first, reusedToo);
        Assert.Equal([(3L, 30), (4L, 40), (5L, 50)], table.Select(pair => (pair.Key, pair.Value.AllocateSize)).Order());
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
    public void SlotsFreedOnAnotherThread_AreReused_BeforeTheTableGrows()
    {
        // Records are added here and removed on a thread that stays alive (as a socket's sending thread would).
        var table = new ResidentTable(maxRecords: 100_000);
        var tokens = new long[1000];
        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.True(table.TryAdd(i + 1, Record(size: i), out tokens[i]));
        }

        Assert.Equal(1000, table.SlotsInUse);
        using LiveThread remover = RunOnLiveThread(() =>
        {
            for (int i = 0; i < tokens.Length; i++)
            {
                Assert.True(table.TryRemove(i + 1, tokens[i]));
            }
        });

        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.True(table.TryAdd(10_000 + i, Record(size: i), out _));
        }

        Assert.Equal(1000, table.SlotsInUse);
        Assert.Equal(1000, table.Count);
    }

    [Fact]
    public void AtTheLimit_SlotsFreedOnALiveThread_AreFoundByEveryThread()
    {
        // The removing thread is still alive when the adding thread looks for room: every freed slot must be found.
        var table = new ResidentTable(maxRecords: 64);
        var tokens = new long[64];
        for (int i = 0; i < 64; i++)
        {
            Assert.True(table.TryAdd(i + 1, Record(size: i), out tokens[i]));
        }

        Assert.True(table.IsFull);
        using LiveThread remover = RunOnLiveThread(() =>
        {
            for (int i = 0; i < 64; i++)
            {
                Assert.True(table.TryRemove(i + 1, tokens[i]));
            }
        });

        Assert.False(table.IsFull, "every slot is free");
        var reused = new HashSet<long>();
        for (int i = 0; i < 64; i++)
        {
            Assert.True(table.TryAdd(100 + i, Record(size: i), out long token), $"record {i} found no free slot");
            Assert.True(reused.Add(token), "two records were given one slot");
        }

        Assert.True(table.IsFull);
        Assert.False(table.TryAdd(200, Record(size: 1), out _));
        Assert.Equal(tokens.ToHashSet(), reused);
    }

    [Fact]
    public void ConcurrentAddsAndRemoves_NeverLoseOrShareASlot()
    {
        // A table that reaches its limit, and threads that each remove some records another thread added.
        var table = new ResidentTable(maxRecords: 64);
        const int Threads = 4;
        const int PerThread = 20_000;
        long nextId = 0;
        var handOff = new System.Collections.Concurrent.ConcurrentQueue<(long Id, long Token)>();
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            var mine = new List<(long Id, long Token)>();
            for (int i = 0; i < PerThread; i++)
            {
                long id = Interlocked.Increment(ref nextId);
                if (mine.Count < 16 && table.TryAdd(id, Record(size: 1), out long token))
                {
                    // Every third record is removed by whichever thread dequeues it.
                    if (id % 3 == 0)
                    {
                        handOff.Enqueue((id, token));
                    }
                    else
                    {
                        mine.Add((id, token));
                    }
                }
                else if (mine.Count > 0)
                {
                    (long oldId, long t) = mine[^1];
                    mine.RemoveAt(mine.Count - 1);
                    if (!table.TryRemove(oldId, t))
                    {
                        failures.Enqueue($"record {oldId} vanished from its slot");
                    }
                }

                if (handOff.TryDequeue(out (long Id, long Token) other) && !table.TryRemove(other.Id, other.Token))
                {
                    failures.Enqueue($"handed-off record {other.Id} vanished from its slot");
                }
            }

            foreach ((long oldId, long t) in mine)
            {
                if (!table.TryRemove(oldId, t))
                {
                    failures.Enqueue($"record {oldId} vanished from its slot");
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        while (handOff.TryDequeue(out (long Id, long Token) left))
        {
            Assert.True(table.TryRemove(left.Id, left.Token), $"handed-off record {left.Id} vanished from its slot");
        }

        Assert.Empty(failures);
        Assert.Empty(table);

        // Every one of the 64 slots is free again: all can be taken at once, and no more.
        var tokens = new HashSet<long>();
        for (int i = 0; i < 64; i++)
        {
            Assert.True(table.TryAdd(1_000_000 + i, Record(size: 1), out long token), $"slot {i} was lost");
            Assert.True(tokens.Add(token), "two records were given one slot");
        }

        Assert.False(table.TryAdd(2_000_000, Record(size: 1), out _));
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

    /// <summary>Runs <paramref name="action"/> on a new thread and rethrows what it threw; the thread stays alive (so its cache stays out of reach) until the result is disposed.</summary>
    private static LiveThread RunOnLiveThread(Action action)
    {
        var done = new ManualResetEventSlim();
        var release = new ManualResetEventSlim();
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception ex)
            {
                failure = ex;
            }

            done.Set();
            release.Wait();
        });
        thread.Start();
        done.Wait();
        var alive = new LiveThread(thread, done, release);
        if (failure is not null)
        {
            alive.Dispose();
            throw new InvalidOperationException("the thread's action failed", failure);
        }

        Assert.True(thread.IsAlive);
        return alive;
    }

    private sealed class LiveThread(Thread thread, ManualResetEventSlim done, ManualResetEventSlim release) : IDisposable
    {
        public void Dispose()
        {
            release.Set();
            thread.Join();
            done.Dispose();
            release.Dispose();
        }
    }
}
