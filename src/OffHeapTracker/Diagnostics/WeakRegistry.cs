namespace OffHeapTracker;

/// <summary>A thread-safe list of objects held weakly: whoever keeps the registry never keeps them alive.</summary>
/// <remarks>Used for every "all the pools" list (metrics instruments, diagnostics endpoints): a tracker must not become the leak.</remarks>
internal sealed class WeakRegistry<T>
    where T : class
{
    private readonly Lock _lock = new();
    private readonly List<WeakReference<T>> _items = [];

    public void Add(T item)
    {
        lock (_lock)
        {
            _items.RemoveAll(static weak => !weak.TryGetTarget(out _));
            _items.Add(new WeakReference<T>(item));
        }
    }

    public void Remove(T item)
    {
        lock (_lock)
        {
            _items.RemoveAll(weak => !weak.TryGetTarget(out T? target) || ReferenceEquals(target, item));
        }
    }

    /// <summary>Returns the items still alive and not removed, in the order they were added.</summary>
    public List<T> Live()
    {
        var live = new List<T>();
        lock (_lock)
        {
            _items.RemoveAll(static weak => !weak.TryGetTarget(out _));
            foreach (WeakReference<T> weak in _items)
            {
                if (weak.TryGetTarget(out T? target))
                {
                    live.Add(target);
                }
            }
        }

        return live;
    }
}
