namespace OffHeapTracker.Monitoring;

/// <summary>What a pool captures with each buffer it reports to a monitor: allocation stacks (every buffer or one in N), dispose stacks, and the bounded table that shares identical stacks.</summary>
/// <remarks>
/// <para>
/// A monitor hands one to its pools through <see cref="IBufferMonitor.StackCapture"/>; the pool captures on the
/// renting (or disposing) thread and passes the result in <see cref="BufferAllocation.Stack"/>, so a custom
/// monitor gets the same stacks as the built-in one. Capture is most of a monitor's cost (a few microseconds per
/// stack), which is why it is sampled and bounded here rather than left to each monitor.
/// </para>
/// <para>All members are thread-safe.</para>
/// </remarks>
public sealed class StackCapture
{
    /// <summary>The largest <see cref="Depth"/>.</summary>
    public const int MaxDepth = 256;

    private static int s_lastId;

    private readonly StackInterner _stacks;
    private readonly Action? _onRefused;
    private long _refused;

    /// <summary>Initializes a capture policy.</summary>
    /// <param name="depth">How many frames of each stack are kept, counted from the caller of <c>Rent</c> or <c>Dispose</c>: 1 to 256.</param>
    /// <param name="sampling">One buffer in this many gets an allocation stack, counted per thread: 1 (every buffer) to 1,000,000.</param>
    /// <param name="fileInfo">True to keep file names and line numbers (about three times the cost, and only where PDBs are deployed).</param>
    /// <param name="disposeStacks">True to capture the stack of each sampled buffer's first <c>Dispose</c>, so a double dispose is reported with both stacks.</param>
    /// <param name="maxStacks">The most distinct stacks kept: 1 to <see cref="int.MaxValue"/>. A buffer whose stack would be new beyond that is not recorded.</param>
    /// <exception cref="ArgumentOutOfRangeException">An argument is out of its range.</exception>
    public StackCapture(int depth = 16, int sampling = 1, bool fileInfo = false, bool disposeStacks = false, int maxStacks = 65_536)
        : this(depth, sampling, fileInfo, disposeStacks, maxStacks, onRefused: null)
    {
    }

    internal StackCapture(int depth, int sampling, bool fileInfo, bool disposeStacks, int maxStacks, Action? onRefused)
    {
        Guard.InRange(depth, 1, MaxDepth, nameof(depth));
        Guard.InRange(sampling, 1, 1_000_000, nameof(sampling));
        Guard.InRange(maxStacks, 1, int.MaxValue, nameof(maxStacks));
        Depth = depth;
        Sampling = sampling;
        FileInfo = fileInfo;
        DisposeStacks = disposeStacks;
        _stacks = new StackInterner(maxStacks);
        _onRefused = onRefused;
        Id = Interlocked.Increment(ref s_lastId);
    }

    /// <summary>Gets how many frames of each stack are kept.</summary>
    public int Depth { get; }

    /// <summary>Gets how often an allocation stack is captured: one buffer in this many, per thread.</summary>
    public int Sampling { get; }

    /// <summary>Gets a value indicating whether stacks carry file names and line numbers.</summary>
    public bool FileInfo { get; }

    /// <summary>Gets a value indicating whether the first <c>Dispose</c> of a buffer with an allocation stack is captured too.</summary>
    public bool DisposeStacks { get; }

    /// <summary>Gets the most distinct stacks kept.</summary>
    public int MaxStacks => _stacks.MaxStacks;

    /// <summary>Gets the number of distinct stacks kept now.</summary>
    public int Count => _stacks.Count;

    /// <summary>Gets the number of captures refused because <see cref="MaxStacks"/> distinct stacks were already kept.</summary>
    public long RefusedCount => Volatile.Read(ref _refused);

    /// <summary>Gets the policy's instance number, which keys each thread's sampling countdown.</summary>
    internal int Id { get; }

    /// <summary>Captures the calling thread's stack, skipping OffHeapTracker's own frames, and returns its shared instance.</summary>
    /// <returns>The interned stack, or null if it is new and <see cref="MaxStacks"/> stacks are already kept (counted in <see cref="RefusedCount"/>).</returns>
    /// <remarks>Ignores <see cref="Sampling"/>: the pool decides which buffers are sampled.</remarks>
    public CapturedStackTrace? Capture()
    {
        CapturedStackTrace? stack = _stacks.Capture(Depth, FileInfo);
        if (stack is null)
        {
            Interlocked.Increment(ref _refused);
            _onRefused?.Invoke();
        }

        return stack;
    }
}
