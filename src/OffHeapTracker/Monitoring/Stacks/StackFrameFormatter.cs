using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace OffHeapTracker.Monitoring;

/// <summary>Turns captured frames into lines of text, one per frame: the readable site (<see cref="Format"/>) or every frame as the runtime names it (<see cref="FormatRaw"/>).</summary>
/// <remarks>
/// A readable line is <c>Namespace.Type.Method(ParamType, ...)</c> with the compiler's names undone: an async or
/// iterator method is its own name and parameters, not its state machine's <c>MoveNext</c>; a lambda is
/// <c>Type.Method(lambda N)</c>, N being the compiler's ordinal of the lambda in that method; a local function is
/// <c>Type.Method.Local(ParamType, ...)</c>; top-level statements are <c>Program.Main</c>; a compiled expression
/// tree (<c>lambda_method18</c>) is <c>[compiled expression]</c>.
/// </remarks>
internal static partial class StackFrameFormatter
{
    private static readonly ConditionalWeakTable<Type, StrongBox<MethodBase?>> s_kickoffMethods = new();

    /// <summary>The allocation site: the frames <see cref="StackFolding"/> keeps, readable, one a line.</summary>
    public static string Format(IReadOnlyList<StackFrame> frames)
    {
        int[] site = StackFolding.SiteFrames(frames);
        var builder = new StringBuilder(site.Length * 64);
        foreach (int index in site)
        {
            if (builder.Length > 0)
            {
                builder.Append('\n');
            }

            AppendReadable(builder, frames[index]);
        }

        return builder.ToString();
    }

    /// <summary>Every captured frame, as the runtime names it (state machines, closures, plumbing and all), one a line.</summary>
    public static string FormatRaw(IReadOnlyList<StackFrame> frames)
    {
        var builder = new StringBuilder(frames.Count * 80);
        foreach (StackFrame frame in frames)
        {
            if (builder.Length > 0)
            {
                builder.Append('\n');
            }

            MethodBase? method = FrameMethods.Method(frame);
            if (method is null)
            {
                AppendWithoutMetadata(builder, frame, readable: false);
                continue;
            }

            if (method.DeclaringType is { } type)
            {
                AppendType(builder, type);
                builder.Append('.');
            }

            builder.Append(method.Name);
            AppendParameters(builder, method, skipGenerated: false);
            AppendFileAndLine(builder, frame);
        }

        return builder.ToString();
    }

    /// <summary>One frame, readable.</summary>
    public static void AppendReadable(StringBuilder builder, StackFrame frame)
    {
        MethodBase? method = FrameMethods.Method(frame);
        if (method is null)
        {
            AppendWithoutMetadata(builder, frame, readable: true);
            return;
        }

        if (method.DeclaringType is null)
        {
            // Built at run time: expression trees compile to lambda_methodN, N counting compilations in the process.
            builder.Append(method.Name.StartsWith("lambda_method", StringComparison.Ordinal) ? "[compiled expression]" : $"[dynamic method {method.Name}]");
            return;
        }

        string? stateMachineFallback = null;
        if (method.Name == "MoveNext" && GeneratedNames.IsGeneratedType(method.DeclaringType)
            && GeneratedNames.StateMachineMethod(method.DeclaringType.Name) is { } written)
        {
            // The body of an async method or iterator: show the method the programmer wrote, with its parameters.
            MethodBase? kickoff = KickoffMethod(method.DeclaringType);
            if (kickoff is null)
            {
                stateMachineFallback = written;
            }

            method = kickoff ?? method;
        }

        Type owner = method.DeclaringType!;
        while (GeneratedNames.IsGeneratedType(owner) && owner.DeclaringType is { } outer)
        {
            owner = outer;
        }

        AppendType(builder, owner);
        builder.Append('.');
        if (stateMachineFallback is not null)
        {
            AppendMethodName(builder, stateMachineFallback, method: null);
        }
        else
        {
            AppendMethodName(builder, method.Name, method);
        }

        AppendFileAndLine(builder, frame);
    }

    /// <summary>The method whose body a state machine type holds, found by its <see cref="StateMachineAttribute"/>; cached per type.</summary>
    private static MethodBase? KickoffMethod(Type stateMachine) => s_kickoffMethods.GetValue(stateMachine, FindKickoffMethod).Value;

    [UnconditionalSuppressMessage("Trimming", "IL2075:UnrecognizedReflectionPattern",
        Justification = "Looks among the declaring type's methods for the one a state machine on the stack belongs to. That method ran (it started the state machine), so the trimmer kept it; the members trimming removes are ones this search does not want. Where the method or its StateMachineAttribute is not there to find (NativeAOT keeps metadata only for methods reflection can see), the search finds nothing and the frame is shown by the method name its state machine type carries.")]
    private static StrongBox<MethodBase?> FindKickoffMethod(Type stateMachine)
    {
        const BindingFlags all = BindingFlags.DeclaredOnly | BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic;
        foreach (MethodInfo candidate in stateMachine.DeclaringType!.GetMethods(all))
        {
            // Compared by metadata token: a generic state machine on the stack may be an instantiation of the attribute's definition.
            if (candidate.GetCustomAttribute<StateMachineAttribute>(inherit: false)?.StateMachineType is { } declared
                && declared.MetadataToken == stateMachine.MetadataToken
                && declared.Module == stateMachine.Module)
            {
                return new StrongBox<MethodBase?>(candidate);
            }
        }

        return new StrongBox<MethodBase?>(null);
    }

    private static void AppendMethodName(StringBuilder builder, string name, MethodBase? method)
    {
        if (AppendWrittenName(builder, name))
        {
            // A lambda reads "Build(lambda 3)": its parameters are not what anyone wrote under that name.
            return;
        }

        if (method is null)
        {
            builder.Append("()");
        }
        else
        {
            AppendParameters(builder, method, skipGenerated: true);
        }
    }

    /// <summary>Appends a method's name as it was written (lambda in <c>Build</c>, local function <c>Produce</c>), without parameters.</summary>
    /// <returns>True for a lambda, whose name already ends in parentheses.</returns>
    private static bool AppendWrittenName(StringBuilder builder, string name)
    {
        switch (GeneratedNames.Parse(name, out string outer, out string detail))
        {
            case GeneratedNames.Kind.Lambda:
                builder.Append(outer).Append("(lambda ").Append(detail).Append(')');
                return true;
            case GeneratedNames.Kind.LocalFunction:
                builder.Append(outer).Append('.').Append(detail);
                return false;
            default:
                builder.Append(GeneratedNames.Readable(name));
                return false;
        }
    }

    private static void AppendParameters(StringBuilder builder, MethodBase method, bool skipGenerated)
    {
        builder.Append('(');
        bool first = true;
        foreach (ParameterInfo parameter in method.GetParameters())
        {
            // A local function that captures locals takes their closure struct by reference: not a parameter anyone wrote.
            Type type = parameter.ParameterType;
            if (skipGenerated && GeneratedNames.IsGeneratedType(type.HasElementType ? type.GetElementType()! : type))
            {
                continue;
            }

            if (!first)
            {
                builder.Append(", ");
            }

            AppendType(builder, type, qualified: false);
            first = false;
        }

        builder.Append(')');
    }

    private static void AppendFileAndLine(StringBuilder builder, StackFrame frame)
    {
        string? file = frame.GetFileName();
        if (file is not null)
        {
            builder.Append(" in ").Append(file).Append(":line ").Append(frame.GetFileLineNumber());
        }
    }

    private static void AppendType(StringBuilder builder, Type type, bool qualified = true)
    {
        if (type.IsGenericParameter)
        {
            builder.Append(type.Name);
            return;
        }

        if (type.HasElementType && type.GetElementType() is { } element)
        {
            AppendType(builder, element, qualified);
            builder.Append(type.IsArray ? "[]" : type.IsByRef ? "&" : "*");
            return;
        }

        if (type.DeclaringType is { } outer)
        {
            AppendType(builder, outer, qualified);
            builder.Append('.');
        }
        else if (qualified && !string.IsNullOrEmpty(type.Namespace))
        {
            builder.Append(type.Namespace).Append('.');
        }

        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        builder.Append(tick < 0 ? name : name[..tick]);
        if (type.IsGenericType && tick >= 0)
        {
            builder.Append('<');
            Type[] arguments = type.GetGenericArguments();
            for (int i = 0; i < arguments.Length; i++)
            {
                if (i > 0)
                {
                    builder.Append(',');
                }

                AppendType(builder, arguments[i], qualified: false);
            }

            builder.Append('>');
        }
    }
}
