namespace OffHeapTracker.Monitoring;

/// <summary>Why a monitor's report (<see cref="ResidentBufferMonitor.GetResident"/>, <see cref="ResidentBufferMonitor.GetLeakSites"/>) came out empty.</summary>
public enum EmptyReportCause
{
    /// <summary>The monitor is off: it records only buffers rented while it is on, and holds no records now.</summary>
    MonitorDisabled,

    /// <summary>Buffers are recorded, but every one of the requested type is younger than the report's minimum age.</summary>
    AllYoungerThanMinAge,

    /// <summary><see cref="BufferType.Pool"/> buffers were asked for, and the monitor does not record them (<see cref="ResidentBufferMonitor.RecordPool"/> is off).</summary>
    PoolBuffersNotRecorded,

    /// <summary>The monitor is on and every buffer of the requested type it recorded has come back.</summary>
    NothingOutstanding,
}
