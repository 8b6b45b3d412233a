namespace OffHeapTracker.Monitoring;

/// <summary>Reads a <see cref="ResidentTable"/> for the monitor's queries, in one pass and without copying the table.</summary>
/// <remarks>
/// The table may hold a million records while a diagnostics endpoint asks for ten. Every query here walks the
/// table once (its walk takes no lock and makes no copy), keeps only what its answer
/// needs (a heap of <c>limit</c> entries, or one tally per allocation site), and builds a
/// <see cref="ResidentBuffer"/> or <see cref="LeakSite"/> only for what it returns. Rents and returns carry on
/// during the walk; a record added or removed meanwhile may or may not be seen, as with any snapshot.
/// </remarks>
internal sealed partial class ResidentQuery(TimeProvider time, long originTimestamp, DateTimeOffset originTime)
{
    /// <summary>The oldest <paramref name="limit"/> matching records, oldest first (ties broken by id).</summary>
    public ResidentBuffer[] Oldest(ResidentTable table, TimeSpan minAge, BufferType? type, int? poolId, int limit)
    {
        long now = time.GetTimestamp();

        // A max-heap on (timestamp, id): its root is the youngest of the oldest seen so far, the one to evict.
        var heap = new PriorityQueue<KeyValuePair<long, ResidentRecord>, Age>(Math.Min(limit, 1024), YoungestFirst.Instance);
        foreach (KeyValuePair<long, ResidentRecord> row in table.Records)
        {
            if (!Matches(row.Value, minAge, type, poolId, now))
            {
                continue;
            }

            var age = new Age(row.Value.Timestamp, row.Key);
            if (heap.Count < limit)
            {
                heap.Enqueue(row, age);
            }
            else if (heap.TryPeek(out _, out Age youngest) && age.CompareTo(youngest) < 0)
            {
                heap.DequeueEnqueue(row, age);
            }
        }

        var result = new ResidentBuffer[heap.Count];
        for (int i = result.Length - 1; i >= 0; i--)
        {
            (long id, ResidentRecord record) = heap.Dequeue();
            result[i] = ToBuffer(id, record, now);
        }

        return result;
    }

    /// <summary>Every matching record, oldest first.</summary>
    public ResidentBuffer[] All(ResidentTable table, TimeSpan minAge, BufferType? type, int? poolId)
    {
        long now = time.GetTimestamp();
        var rows = new List<KeyValuePair<long, ResidentRecord>>();
        foreach (KeyValuePair<long, ResidentRecord> row in table.Records)
        {
            if (Matches(row.Value, minAge, type, poolId, now))
            {
                rows.Add(row);
            }
        }

        rows.Sort(static (a, b) => new Age(a.Value.Timestamp, a.Key).CompareTo(new Age(b.Value.Timestamp, b.Key)));
        var result = new ResidentBuffer[rows.Count];
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = ToBuffer(rows[i].Key, rows[i].Value, now);
        }

        return result;
    }

    private bool Matches(in ResidentRecord record, TimeSpan minAge, BufferType? type, int? poolId, long now) =>
        (type is null || record.BufferType == type)
        && (poolId is null || record.PoolId == poolId)
        && time.GetElapsedTime(record.Timestamp, now) >= minAge;

    private ResidentBuffer ToBuffer(long id, in ResidentRecord record, long now) => new()
    {
        Id = id,
        AliveSeconds = time.GetElapsedTime(record.Timestamp, now).TotalSeconds,
        StackTrace = record.Stack?.Text ?? string.Empty,
        BufferType = record.BufferType,
        AllocateSize = record.AllocateSize,
        ActualSize = record.ActualSize,
        AllocateTime = originTime + time.GetElapsedTime(originTimestamp, record.Timestamp),
        Context = record.Context,
        PoolName = record.PoolName,
        PoolId = record.PoolId,
        ThreadId = record.ThreadId,
        Address = record.Address,
    };

    /// <summary>A record's place in "oldest first": its timestamp, then its id.</summary>
    private readonly record struct Age(long Timestamp, long Id) : IComparable<Age>
    {
        public int CompareTo(Age other)
        {
            int byTime = Timestamp.CompareTo(other.Timestamp);
            return byTime != 0 ? byTime : Id.CompareTo(other.Id);
        }
    }

    private sealed class YoungestFirst : IComparer<Age>
    {
        public static readonly YoungestFirst Instance = new();

        public int Compare(Age x, Age y) => y.CompareTo(x);
    }
}
