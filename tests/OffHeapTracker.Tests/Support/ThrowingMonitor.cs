namespace OffHeapTracker.Tests.Support;

/// <summary>A monitor that is enabled and throws from every hook.</summary>
internal sealed class ThrowingMonitor : IBufferMonitor
{
    public int Allocated;

    public bool IsEnabled => true;

    public bool OnAllocated(in BufferAllocation allocation)
    {
        Interlocked.Increment(ref Allocated);
        throw new InvalidOperationException("monitor failure on allocate");
    }

    public void OnReturned(long id) => throw new InvalidOperationException("monitor failure on free");
}

/// <summary>A monitor that records every call, to check what the pool tells it.</summary>
internal sealed class RecordingMonitor : IBufferMonitor
{
    public List<BufferAllocation> Allocations { get; } = [];

    public List<long> Frees { get; } = [];

    public bool IsEnabled { get; set; } = true;

    public bool Accept { get; set; } = true;

    public bool OnAllocated(in BufferAllocation allocation)
    {
        lock (Allocations)
        {
            Allocations.Add(allocation);
        }

        return Accept;
    }

    public void OnReturned(long id)
    {
        lock (Frees)
        {
            Frees.Add(id);
        }
    }
}

/// <summary>A monitor whose switch itself throws: the pool must treat it as off and carry on.</summary>
internal sealed class ThrowingSwitchMonitor : IBufferMonitor
{
    public bool IsEnabled => throw new InvalidOperationException("monitor failure reading IsEnabled");

    public bool OnAllocated(in BufferAllocation allocation) => throw new InvalidOperationException("must not be called");

    public void OnReturned(long id) => throw new InvalidOperationException("must not be called");
}
