using System.Buffers;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Benchmarks;

/// <summary>The pools under test, built the way an application would build them.</summary>
internal static class Subjects
{
    public static DirectBufferPool Direct(ResidentBufferMonitor monitor) =>
        new(new DirectBufferPoolOptions { Name = "bench", Monitor = monitor });

    public static ResidentBufferMonitor Off() => new();

    public static ResidentBufferMonitor On(int depth, int sampling = 1, bool disposeStacks = true, StackPolicy stacks = StackPolicy.Every)
    {
        var monitor = new ResidentBufferMonitor(new ResidentBufferMonitorOptions
        {
            StackTraceDepth = depth,
            StackTraceSampling = sampling,
            CaptureDisposeStacks = disposeStacks,
            Stacks = stacks,
        });
        monitor.Enable();
        return monitor;
    }

    /// <summary>The monitor as <c>BufferMonitor.Enable()</c> switches it on: default options (budgeted stacks, no dispose stacks).</summary>
    public static ResidentBufferMonitor OnWithDefaults()
    {
        var monitor = new ResidentBufferMonitor();
        monitor.Enable();
        return monitor;
    }

    /// <summary>Kestrel's pinned block pool, from the <see cref="IMemoryPoolFactory{T}"/> an ASP.NET Core host registers.</summary>
    public static MemoryPool<byte> Kestrel(out IDisposable host)
    {
        WebApplication app = WebApplication.CreateSlimBuilder().Build();
        host = app;
        return app.Services.GetRequiredService<IMemoryPoolFactory<byte>>().Create(new MemoryPoolOptions { Owner = "benchmark" });
    }
}
