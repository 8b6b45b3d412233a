using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace OffHeapTracker.Monitoring;

/// <summary>Turns captured frames into readable lines: <c>Namespace.Type.Method(ParamType, ...)</c>, one per frame.</summary>
/// <remarks>Async and iterator state machines are shown as the method the programmer wrote, as <see cref="StackTrace.ToString()"/> does.</remarks>
internal static class StackFrameFormatter
{
    public static string Format(StackFrame[] frames)
    {
        var builder = new StringBuilder(frames.Length * 64);
        foreach (StackFrame frame in frames)
        {
            // Async plumbing (AsyncMethodBuilderCore.Start and the like) is marked hidden; so is it here.
            if (IsHidden(frame.GetMethod()))
            {
                continue;
            }

            if (builder.Length > 0)
            {
                builder.Append('\n');
            }

            AppendFrame(builder, frame);
        }

        return builder.ToString();
    }

    // The runtime's own StackTrace.ToString() rules: [StackTraceHidden] on the method or its type, and
    // AggressiveInlining methods, which appear only when they were not inlined (Tier0, cross-assembly R2R). We
    // also hide the machinery that resumes async methods and runs thread-pool work: after an await, a stack is
    // otherwise a dozen frames of continuations around the one line that matters.
    private static bool IsHidden(MethodBase? method) =>
        method is not null
        && ((method.MethodImplementationFlags & MethodImplAttributes.AggressiveInlining) != 0
            || method.IsDefined(typeof(StackTraceHiddenAttribute), inherit: false)
            || method.DeclaringType?.IsDefined(typeof(StackTraceHiddenAttribute), inherit: false) == true
            || IsAsyncPlumbing(method.DeclaringType));

    private static bool IsAsyncPlumbing(Type? type)
    {
        // Nested types (state machine boxes, display classes) belong to their outermost type.
        while (type?.DeclaringType is not null)
        {
            type = type.DeclaringType;
        }

        return type is not null
            && type.Assembly == typeof(object).Assembly
            && (type.Namespace is "System.Runtime.CompilerServices" or "System.Threading.Tasks"
                || type == typeof(ExecutionContext)
                || type.Name is "ThreadPoolWorkQueue" or "PortableThreadPool" or "WorkerThread" or "Thread");
    }

    // Finds the '>' that closes the '<' at index 0, so "<<Main>$>d__0" yields "<Main>$".
    private static int ClosingBracket(string name)
    {
        int depth = 0;
        for (int i = 0; i < name.Length; i++)
        {
            depth += name[i] switch { '<' => 1, '>' => -1, _ => 0 };
            if (depth == 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static void AppendFrame(StringBuilder builder, StackFrame frame)
    {
        MethodBase? method = frame.GetMethod();
        if (method is null)
        {
            builder.Append("<unknown>");
            return;
        }

        Type? type = method.DeclaringType;
        string name = method.Name;

        // Compiler-generated state machines: <Method>d__3.MoveNext() inside Outer becomes Outer.Method().
        if (type is { DeclaringType: not null } && name == "MoveNext" && type.Name.StartsWith('<'))
        {
            int end = ClosingBracket(type.Name);
            if (end > 1)
            {
                name = type.Name[1..end];
                type = type.DeclaringType;
                method = null;
            }
        }

        if (type is not null)
        {
            AppendType(builder, type);
            builder.Append('.');
        }

        builder.Append(name).Append('(');
        if (method is not null)
        {
            ParameterInfo[] parameters = method.GetParameters();
            for (int i = 0; i < parameters.Length; i++)
            {
                if (i > 0)
                {
                    builder.Append(", ");
                }

                AppendType(builder, parameters[i].ParameterType, qualified: false);
            }
        }

        builder.Append(')');

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

        if (type.DeclaringType is { } outer && !type.IsGenericParameter)
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
