using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

// Folding a frame known by names only (NativeAOT keeps no reflection metadata for most methods): the same rules,
// read from the names DiagnosticMethodInfo gives.
public sealed partial class StackFoldingTests
{
    private const string CoreLibName = "System.Private.CoreLib, Version=10.0.0.0, Culture=neutral, PublicKeyToken=7cec85d7bea7798e";

    [Fact]
    public void ByNames_ApplicationCode_IsAnyAssemblyButTheRuntimeFrameworksTestRunnersAndOffHeapTracker()
    {
        Assert.True(StackFolding.IsApplication(new FrameNames("App.Orders", "Place", "App, Version=1.0.0.0, Culture=neutral, PublicKeyToken=null")));
        Assert.False(StackFolding.IsApplication(new FrameNames("OffHeapTracker.DirectBufferPool", "Rent", "OffHeapTracker, Version=0.1.0.0, Culture=neutral, PublicKeyToken=null")));
        Assert.False(StackFolding.IsApplication(new FrameNames("System.IO.Stream", "CopyTo", CoreLibName)));
        Assert.False(StackFolding.IsApplication(new FrameNames("Xunit.Sdk.TestInvoker`1", "CallTestMethod", "xunit.execution.dotnet")));
        Assert.False(StackFolding.IsApplication(new FrameNames(null, "lambda_method3", null)));
    }

    [Fact]
    public void ByNames_ThreadPoolAndTaskMachinery_IsDispatch_ButABuilderStartingAMethodIsOnlyHidden()
    {
        Assert.True(StackFolding.IsDispatch(new FrameNames("System.Threading.ThreadPoolWorkQueue", "Dispatch", CoreLibName)));
        Assert.True(StackFolding.IsDispatch(new FrameNames("System.Runtime.CompilerServices.AsyncTaskMethodBuilder`1+AsyncStateMachineBox`1", "MoveNext", CoreLibName)));
        Assert.True(StackFolding.IsDispatch(new FrameNames("System.Net.Sockets.SocketAsyncEngine", "EventLoop", "System.Net.Sockets")));

        var start = new FrameNames("System.Runtime.CompilerServices.AsyncMethodBuilderCore", "Start", CoreLibName);
        Assert.False(StackFolding.IsDispatch(start));
        Assert.True(StackFolding.IsHidden(start));

        // Same namespace, another assembly: not the runtime's plumbing.
        Assert.False(StackFolding.IsDispatch(new FrameNames("System.Threading.Tasks.Parallel", "Invoke", "System.Threading.Tasks.Parallel")));
    }

    [Fact]
    public void ByNames_AStateMachinesMoveNext_IsAnAsyncBody()
    {
        Assert.True(StackFolding.IsAsyncStateMachine(new FrameNames("App.Orders+<PlaceAsync>d__3", "MoveNext", "App")));
        Assert.False(StackFolding.IsAsyncStateMachine(new FrameNames("System.Collections.Generic.List`1+Enumerator", "MoveNext", CoreLibName)));
    }
}
