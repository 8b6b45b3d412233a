using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace OffHeapTracker.Monitoring;

/// <summary>Frames whose method the runtime keeps no metadata for (NativeAOT): formatted from the names stack-trace metadata keeps, else by where they are.</summary>
internal static partial class StackFrameFormatter
{
    /// <summary>A frame whose method the runtime has no metadata for (NativeAOT): the names stack-trace metadata keeps, else where the frame is.</summary>
    private static void AppendWithoutMetadata(StringBuilder builder, StackFrame frame, bool readable)
    {
        if (FrameMethods.Names(frame) is { } names)
        {
            AppendNames(builder, names, readable);
        }
        else
        {
            AppendUnknown(builder, frame);
        }

        AppendFileAndLine(builder, frame);
    }

    /// <summary>A method known by names only: its declaring type and name, without parameters (names do not carry them); readable undoes the compiler's names as <see cref="AppendReadable"/> does.</summary>
    internal static void AppendNames(StringBuilder builder, FrameNames names, bool readable)
    {
        if (names.TypeName is not { } typeName)
        {
            builder.Append(names.MethodName.StartsWith("lambda_method", StringComparison.Ordinal) && readable ? "[compiled expression]" : $"[dynamic method {names.MethodName}]");
            return;
        }

        if (!readable)
        {
            builder.Append(TypeDisplayName(typeName)).Append('.').Append(names.MethodName);
            return;
        }

        // The owner is the outermost type the programmer wrote: generated types (closures, state machines) are
        // nested in it, and the innermost generated one may name the method (an async method's state machine).
        string[] nesting = typeName.Split('+');
        int written = nesting.Length;
        while (written > 1 && nesting[written - 1].StartsWith('<'))
        {
            written--;
        }

        builder.Append(TypeDisplayName(string.Join('+', nesting, 0, written))).Append('.');
        string name = names.MethodName;
        if (name == "MoveNext" && written < nesting.Length && GeneratedNames.StateMachineMethod(nesting[^1]) is { } stateMachineMethod)
        {
            name = stateMachineMethod;
        }

        AppendWrittenName(builder, name);
    }

    /// <summary>A frame with neither method nor names: where it is, so it can still be told apart and looked up (an IL offset, or an address in the native image that the image's symbols resolve).</summary>
    private static void AppendUnknown(StringBuilder builder, StackFrame frame)
    {
        builder.Append("<unknown>");
        nint ip = frame.GetNativeIP();
        nint imageBase = frame.GetNativeImageBase();
        if (ip != 0 && imageBase != 0)
        {
            builder.Append(" +0x").Append((ip - imageBase).ToString("x", CultureInfo.InvariantCulture)).Append(" in the native image");
        }
        else if (frame.GetILOffset() is int offset and not StackFrame.OFFSET_UNKNOWN)
        {
            builder.Append(" at IL offset ").Append(offset.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A type's full name as <see cref="Type.FullName"/> spells it (<c>Ns.Box`1+Inner</c>), readable: <c>Ns.Box.Inner</c>.</summary>
    private static string TypeDisplayName(string fullName)
    {
        var name = new StringBuilder(fullName.Length);
        for (int i = 0; i < fullName.Length; i++)
        {
            char c = fullName[i];
            if (c == '`')
            {
                // The arity: digits that the definition's name carries; names do not say what the parameters are.
                while (i + 1 < fullName.Length && char.IsAsciiDigit(fullName[i + 1]))
                {
                    i++;
                }

                continue;
            }

            name.Append(c == '+' ? '.' : c);
        }

        return name.ToString();
    }
}
