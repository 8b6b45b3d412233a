namespace OffHeapTracker.Monitoring;

/// <summary>One site's points, oldest first, folded as they come into what <see cref="LeakSiteGrowth"/> reports.</summary>
/// <remarks>The one implementation of the rule: the monitor's history and, through <see cref="LeakSiteGrowth.Of"/>, the ASP.NET Core dashboard's.</remarks>
internal struct GrowthSeries
{
    private int _points;
    private int _rises;
    private long _firstBytes;
    private long _lastBytes;
    private long _maxBytes;
    private long _firstCount;
    private long _lastCount;
    private long _firstTimestamp;
    private long _lastTimestamp;
    private bool _fell;

    /// <summary>Adds the next point, later than every point before it.</summary>
    public void Add(long timestamp, long bytes, long count)
    {
        if (_points == 0)
        {
            _firstBytes = bytes;
            _firstCount = count;
            _firstTimestamp = timestamp;
        }
        else
        {
            if (bytes > _lastBytes)
            {
                _rises++;
            }

            // Against the highest value before this point: a wobble of an estimate stays within 5 %, a release does not.
            _fell |= bytes < _maxBytes * 0.95;
        }

        _points++;
        _lastBytes = bytes;
        _lastCount = count;
        _lastTimestamp = timestamp;
        _maxBytes = Math.Max(_maxBytes, bytes);
    }

    public readonly LeakSiteGrowth ToGrowth(TimeProvider time) => ToGrowth(time.TimestampFrequency);

    /// <summary>The verdict, with timestamps counted at <paramref name="timestampFrequency"/> ticks a second.</summary>
    public readonly LeakSiteGrowth ToGrowth(long timestampFrequency) => new()
    {
        Points = _points,
        FirstBytes = _firstBytes,
        LastBytes = _lastBytes,
        FirstCount = _firstCount,
        LastCount = _lastCount,
        Span = _points > 1 ? TimeSpan.FromSeconds((_lastTimestamp - _firstTimestamp) / (double)timestampFrequency) : TimeSpan.Zero,
        OnlyGrows = _points >= LeakSiteGrowth.MinPoints && _rises >= 2 && !_fell && _lastBytes >= _firstBytes * 1.1 && _lastBytes > _firstBytes,
    };
}
