using System.Text;
using OffHeapTracker.Monitoring;

namespace OffHeapTracker.Tests.Monitoring.Stacks;

// Frames without reflection metadata (NativeAOT): named from what stack-trace metadata keeps, else by their offset.
public sealed partial class StackFrameFormatterTests
{
    private const string CoreLib = "System.Private.CoreLib, Version=10.0.0.0, Culture=neutral, PublicKeyToken=7cec85d7bea7798e";

    // Type names as DiagnosticMethodInfo.DeclaringTypeName gives them: Type.FullName of the definition.
    public static TheoryData<string?, string, string> NamesAndLines => new()
    {
        { "App.Orders", "Place", "App.Orders.Place" },
        { "App.Box`1+Inner", "Get", "App.Box.Inner.Get" },
        { "App.Orders+<PlaceAsync>d__3", "MoveNext", "App.Orders.PlaceAsync" },
        { "Program+<<Main>$>d__0", "MoveNext", "Program.Main" },
        { "App.Orders+<>c", "<Build>b__0_3", "App.Orders.Build(lambda 3)" },
        { "App.Orders+<>c__DisplayClass2_0", "<Build>b__1", "App.Orders.Build(lambda 1)" },
        { "App.Orders", "<Run>g__Produce|0_0", "App.Orders.Run.Produce" },
        { "System.Collections.Generic.List`1+Enumerator", "MoveNext", "System.Collections.Generic.List.Enumerator.MoveNext" },
        { null, "lambda_method18", "[compiled expression]" },
    };

    [Theory]
    [MemberData(nameof(NamesAndLines))]
    public void FrameKnownByNamesOnly_IsTypeAndMethod_WithCompilerNamesUndone(string? typeName, string methodName, string expected)
    {
        var builder = new StringBuilder();
        StackFrameFormatter.AppendNames(builder, new FrameNames(typeName, methodName, "App"), readable: true);
        Assert.Equal(expected, builder.ToString());
    }

    [Fact]
    public void FrameKnownByNamesOnly_RawIsTheRuntimesNames()
    {
        var builder = new StringBuilder();
        StackFrameFormatter.AppendNames(builder, new FrameNames("App.Orders+<PlaceAsync>d__3", "MoveNext", CoreLib), readable: false);
        Assert.Equal("App.Orders.<PlaceAsync>d__3.MoveNext", builder.ToString());
    }

    [Fact]
    public void FrameWithoutMetadataOrNames_IsUnknown_AtItsILOffset()
    {
        // On CoreCLR a frame has no native image offset to show (GetNativeIP is zero), so the IL offset stands in.
        Assert.Equal("<unknown> at IL offset 42", StackFrameFormatter.Format([Frame(null, ilOffset: 42)]));
        Assert.Equal("<unknown> at IL offset 42 in /src/App/Handler.cs:line 7", StackFrameFormatter.FormatRaw([Frame(null, "/src/App/Handler.cs", 7, ilOffset: 42)]));
    }

    [Fact]
    public void FrameWithoutMetadata_AmongOthers_DoesNotHideTheSite()
    {
        // Nothing is known about the unknown frame: it is neither plumbing nor application code, so it stays, and
        // the application frame after it still starts the site.
        string site = StackFrameFormatter.Format([Frame(PipeGetMemory), Frame(null, ilOffset: 3), Frame(Method(nameof(NoParameters)))]);
        Assert.Equal($"{Here}.NoParameters()", site);
    }
}
