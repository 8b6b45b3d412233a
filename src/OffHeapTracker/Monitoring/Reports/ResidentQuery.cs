namespace OffHeapTracker.Monitoring;

/// <summary>Reads a <see cref="ResidentTable"/> for the monitor's queries, in one pass and without copying the table.</summary>
/// <remarks>
/// The table may hold a million records while a diagnostics endpoint asks for ten. Every query here walks the
/// table once (its walk takes no lock and makes no copy), keeps only what its answer
/// needs (a heap of <c>limit</c> entries, or one tally per allocation site), and builds a
/// <see cref="ResidentBuffer"/> or <see cref="LeakSite"/> only for what it returns. Rents and returns carry on
/// during the walk; a record added or removed meanwhile may or may not be seen, as with any snapshot.
/// </remarks>
internal sealed class ResidentQuery(TimeProvider time, long originTimestamp, DateTimeOffset originTime)
{
    private const int SampleIdCount = 5;

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

    /// <summary>The matching records grouped by allocation stack, biggest holders first, at most <paramref name="top"/> sites.</summary>
    public List<LeakSite> Sites(ResidentTable table, TimeSpan minAge, BufferType? type, int top)
    {
        long now = time.GetTimestamp();
        var byStack = new Dictionary<CapturedStackTrace, SiteTally>(ReferenceEqualityComparer.Instance);
        SiteTally? noStack = null;
        long totalCount = 0;
        long totalBytes = 0;
        foreach (KeyValuePair<long, ResidentRecord> row in table.Records)
        {
            ResidentRecord record = row.Value;
            if (!Matches(record, minAge, type, poolId: null, now))
            {
                continue;
            }

            totalCount++;
            totalBytes += record.ActualSize;
            SiteTally tally;
            if (record.Stack is null)
            {
                tally = noStack ??= new SiteTally(LeakSite.NoStack);
            }
            else if (!byStack.TryGetValue(record.Stack, out tally!))
            {
                byStack[record.Stack] = tally = new SiteTally(null);
            }

            tally.Add(row.Key, record);
        }

        // Distinct interned stacks that differ only in what the site folds away (how an async method was resumed,
        // plumbing above the caller) have the same site key, built once per interned stack: they are one site.
        var byText = new Dictionary<string, SiteTally>(byStack.Count + 1, StringComparer.Ordinal);
        if (noStack is not null)
        {
            byText[LeakSite.NoStack] = noStack;
        }

        foreach ((CapturedStackTrace stack, SiteTally tally) in byStack)
        {
            string key = stack.SiteKey.Length > 0 ? stack.SiteKey : LeakSite.NoStack;
            int count = tally.Count;
            if (byText.TryGetValue(key, out SiteTally? same))
            {
                same.Merge(tally);
            }
            else
            {
                tally.StackTrace = key;
                byText[key] = same = tally;
            }

            same.AddStack(stack, count);
        }

        // Every buffer is in the table; only some carry a stack, each weighted by the rents it was drawn from. The
        // sampled records say how the buffers split between sites, the table says how many there are: each site gets
        // its weighted share of the matching records (a ratio estimate, far steadier than summing weights alone,
        // because the total is exact). Without any sampled record, the no-stack site keeps them all.
        long sampledWeight = 0;
        long sampledWeightedBytes = 0;
        foreach (SiteTally tally in byText.Values)
        {
            if (!ReferenceEquals(tally, noStack))
            {
                sampledWeight += tally.EstimatedCount;
                sampledWeightedBytes += tally.EstimatedBytes;
            }
        }

        // When every matching record carries a stack, each site's records are exactly its buffers, whatever their weights.
        bool estimated = noStack is not null && sampledWeight > 0;
        foreach (SiteTally tally in byText.Values)
        {
            if (ReferenceEquals(tally, noStack))
            {
                tally.EstimatedCount = sampledWeight > 0 ? 0 : tally.Count;
                tally.EstimatedBytes = sampledWeight > 0 ? 0 : tally.Bytes;
            }
            else if (estimated)
            {
                tally.EstimatedCount = (long)Math.Round((double)totalCount * tally.EstimatedCount / sampledWeight);
                tally.EstimatedBytes = sampledWeightedBytes > 0
                    ? (long)Math.Round((double)totalBytes * tally.EstimatedBytes / sampledWeightedBytes)
                    : 0;
            }
            else
            {
                tally.EstimatedCount = tally.Count;
                tally.EstimatedBytes = tally.Bytes;
            }

            tally.IsEstimate = estimated;
        }

        var tallies = new List<SiteTally>(byText.Values);
        tallies.Sort(static (a, b) =>
        {
            int order = b.EstimatedBytes.CompareTo(a.EstimatedBytes);
            order = order != 0 ? order : b.Bytes.CompareTo(a.Bytes);
            order = order != 0 ? order : b.Count.CompareTo(a.Count);
            order = order != 0 ? order : a.Oldest.CompareTo(b.Oldest);
            return order != 0 ? order : string.CompareOrdinal(a.StackTrace, b.StackTrace);
        });

        var sites = new List<LeakSite>(Math.Min(top, tallies.Count));
        for (int i = 0; i < sites.Capacity; i++)
        {
            sites.Add(tallies[i].ToSite(time, now));
        }

        return sites;
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

    /// <summary>What one site adds up to: counts, bytes, the age span, the types, the ids of its oldest few buffers, and the raw stacks folded into it.</summary>
    private sealed class SiteTally(string? stackTrace)
    {
        private readonly Age[] _samples = new Age[SampleIdCount];
        private int _sampleCount;
        private List<KeyValuePair<CapturedStackTrace, int>>? _stacks;
        private bool _normal;
        private bool _pool;

        public string? StackTrace { get; set; } = stackTrace;

        public int Count { get; private set; }

        public long Bytes { get; private set; }

        public long Oldest { get; private set; } = long.MaxValue;

        public long Newest { get; private set; } = long.MinValue;

        /// <summary>Gets the buffers the sampled records stand for: the sum of their weights.</summary>
        public long EstimatedCount { get; set; }

        public long EstimatedBytes { get; set; }

        /// <summary>Gets or sets a value indicating whether any record stood for more than itself, so the estimates are estimates.</summary>
        public bool IsEstimate { get; set; }

        public void Add(long id, in ResidentRecord record)
        {
            Count++;
            Bytes += record.ActualSize;
            EstimatedCount += record.StackWeight;
            EstimatedBytes += (long)record.StackWeight * record.ActualSize;
            IsEstimate |= record.StackWeight > 1;
            Oldest = Math.Min(Oldest, record.Timestamp);
            Newest = Math.Max(Newest, record.Timestamp);
            _normal |= record.BufferType == BufferType.Normal;
            _pool |= record.BufferType == BufferType.Pool;
            AddSample(new Age(record.Timestamp, id));
        }

        public void Merge(SiteTally other)
        {
            Count += other.Count;
            Bytes += other.Bytes;
            EstimatedCount += other.EstimatedCount;
            EstimatedBytes += other.EstimatedBytes;
            IsEstimate |= other.IsEstimate;
            Oldest = Math.Min(Oldest, other.Oldest);
            Newest = Math.Max(Newest, other.Newest);
            _normal |= other._normal;
            _pool |= other._pool;
            for (int i = 0; i < other._sampleCount; i++)
            {
                AddSample(other._samples[i]);
            }
        }

        /// <summary>Notes an interned stack folded into this site, with its number of records.</summary>
        public void AddStack(CapturedStackTrace stack, int count) => (_stacks ??= []).Add(new(stack, count));

        public LeakSite ToSite(TimeProvider time, long now)
        {
            long[] ids = new long[_sampleCount];
            for (int i = 0; i < ids.Length; i++)
            {
                ids[i] = _samples[i].Id;
            }

            // Raw texts only for the sites returned, and only the few shown: a table can hold thousands of stacks.
            var rawStacks = new List<string>(SampleIdCount);
            if (_stacks is not null)
            {
                _stacks.Sort(static (a, b) => b.Value != a.Value ? b.Value.CompareTo(a.Value) : a.Key.Hash.CompareTo(b.Key.Hash));
                for (int i = 0; i < _stacks.Count && rawStacks.Count < SampleIdCount; i++)
                {
                    string raw = _stacks[i].Key.RawText;
                    if (!rawStacks.Contains(raw))
                    {
                        rawStacks.Add(raw);
                    }
                }
            }

            return new LeakSite
            {
                StackTrace = StackTrace!,
                Count = Count,
                TotalBytes = Bytes,
                EstimatedCount = EstimatedCount,
                EstimatedBytes = EstimatedBytes,
                IsEstimate = IsEstimate,
                OldestAgeSeconds = time.GetElapsedTime(Oldest, now).TotalSeconds,
                NewestAgeSeconds = time.GetElapsedTime(Newest, now).TotalSeconds,
                BufferTypes = (_normal, _pool) switch
                {
                    (true, true) => [BufferType.Normal, BufferType.Pool],
                    (false, true) => [BufferType.Pool],
                    _ => [BufferType.Normal],
                },
                SampleIds = ids,
                RawStackTraces = [.. rawStacks],
                RawStackTraceCount = _stacks?.Count ?? 0,
            };
        }

        /// <summary>Keeps the oldest few, sorted: an insertion into an array of at most five.</summary>
        private void AddSample(Age age)
        {
            if (_sampleCount == SampleIdCount && age.CompareTo(_samples[SampleIdCount - 1]) >= 0)
            {
                return;
            }

            int i = Math.Min(_sampleCount, SampleIdCount - 1);
            while (i > 0 && age.CompareTo(_samples[i - 1]) < 0)
            {
                _samples[i] = _samples[i - 1];
                i--;
            }

            _samples[i] = age;
            _sampleCount = Math.Min(_sampleCount + 1, SampleIdCount);
        }
    }
}
