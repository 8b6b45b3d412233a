namespace OffHeapTracker.Monitoring;

/// <summary>Works out why a report came out empty, from the monitor's switches and one walk of its table.</summary>
/// <remarks>
/// Called only after a query found nothing, so its walk costs nothing on the paths that matter. Rents and returns
/// carry on meanwhile: when the walk finds a record the report would now list, there is nothing to explain.
/// </remarks>
internal static class EmptyReportExplainer
{
    /// <summary>Explains an empty report.</summary>
    /// <param name="table">The monitor's current table.</param>
    /// <param name="time">The monitor's clock.</param>
    /// <param name="minAge">The report's minimum age.</param>
    /// <param name="type">The report's buffer type; null for both.</param>
    /// <param name="enabled">Whether the monitor is recording.</param>
    /// <param name="recordPool">Whether it records <see cref="BufferType.Pool"/> buffers.</param>
    /// <param name="outstandingBeforeEnable">
    /// The census hook (issue 13, item 1): how many buffers the monitor's pools have outstanding that were rented
    /// before it was switched on, which no report can ever list; null while no census is available.
    /// </param>
    /// <returns>The reason; null when the table now holds a record the report would list.</returns>
    public static EmptyReportReason? Explain(
        ResidentTable table,
        TimeProvider time,
        TimeSpan minAge,
        BufferType? type,
        bool enabled,
        bool recordPool,
        long? outstandingBeforeEnable)
    {
        string census = outstandingBeforeEnable is > 0
            ? FormattableString.Invariant($" {outstandingBeforeEnable} buffers still out were rented before the monitor was switched on; no report can list them.")
            : string.Empty;
        if (!enabled && table.Count == 0)
        {
            return new EmptyReportReason
            {
                Cause = EmptyReportCause.MonitorDisabled,
                MinAge = minAge,
                BufferType = type,
                Message = "The monitor is off: it records only buffers rented while it is on. Switch it on "
                    + "(Enable(), or OFFHEAPTRACKER_MONITOR=1 at startup for BufferMonitor) and ask again once leaks have had time to age." + census,
            };
        }

        long now = time.GetTimestamp();
        int younger = 0;
        TimeSpan youngest = TimeSpan.MaxValue;
        TimeSpan oldest = TimeSpan.MinValue;
        foreach (KeyValuePair<long, ResidentRecord> row in table.Records)
        {
            if (type is not null && row.Value.BufferType != type)
            {
                continue;
            }

            TimeSpan age = time.GetElapsedTime(row.Value.Timestamp, now);
            if (age >= minAge)
            {
                return null;
            }

            younger++;
            youngest = age < youngest ? age : youngest;
            oldest = age > oldest ? age : oldest;
        }

        if (younger > 0)
        {
            string range = younger == 1
                ? $"aged {EmptyReportReason.Seconds(youngest.TotalSeconds)}"
                : $"aged {EmptyReportReason.Seconds(youngest.TotalSeconds)} to {EmptyReportReason.Seconds(oldest.TotalSeconds)}";
            string what = younger == 1
                ? $"The one buffer{Of(type)} recorded is"
                : FormattableString.Invariant($"All {younger} buffers{Of(type)} recorded are");
            return new EmptyReportReason
            {
                Cause = EmptyReportCause.AllYoungerThanMinAge,
                MinAge = minAge,
                BufferType = type,
                YoungerCount = younger,
                YoungestAgeSeconds = youngest.TotalSeconds,
                OldestAgeSeconds = oldest.TotalSeconds,
                Message = $"{what} younger than the minimum age of {EmptyReportReason.Seconds(minAge.TotalSeconds)} ({range}): "
                    + "young buffers are usually about to come back. "
                    + "Ask again later, or with a smaller minAge." + census,
            };
        }

        if (type == BufferType.Pool && !recordPool)
        {
            return new EmptyReportReason
            {
                Cause = EmptyReportCause.PoolBuffersNotRecorded,
                MinAge = minAge,
                BufferType = type,
                Message = "POOL buffers are not recorded: RecordPool is off." + census,
            };
        }

        return new EmptyReportReason
        {
            Cause = EmptyReportCause.NothingOutstanding,
            MinAge = minAge,
            BufferType = type,
            Message = $"The monitor is on, and every buffer{Of(type)} rented since it was switched on has come back." + census,
        };
    }

    private static string Of(BufferType? type) => type switch
    {
        BufferType.Normal => " of type NORMAL",
        BufferType.Pool => " of type POOL",
        _ => string.Empty,
    };
}
