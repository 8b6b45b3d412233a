namespace OffHeapTracker.Monitoring;

/// <summary>Reads the names the C# compiler gives the methods and types it generates, back into what the programmer wrote.</summary>
/// <remarks>
/// Roslyn names a generated member <c>&lt;Outer&gt;k__Suffix</c>: the method it was written in, a kind letter, then a
/// suffix. Lambdas are <c>b</c> (<c>&lt;Build&gt;b__0_3</c> in the shared <c>&lt;&gt;c</c> class, <c>&lt;Build&gt;b__3</c>
/// in a closure's display class: the last number is the lambda's ordinal in its method), local functions are
/// <c>g</c> (<c>&lt;Main&gt;g__Produce|0_0</c>), state machine types are <c>d</c> (<c>&lt;CountAsync&gt;d__3</c>).
/// Top-level statements live in <c>&lt;Main&gt;$</c>, so their lambdas are <c>&lt;&lt;Main&gt;$&gt;b__0_1</c>.
/// These are compiler conventions, not a contract: a name that does not parse is shown as it is.
/// </remarks>
internal static class GeneratedNames
{
    /// <summary>What a generated method name stands for.</summary>
    public enum Kind
    {
        /// <summary>Not a generated name this reader understands.</summary>
        None,

        /// <summary>A lambda or anonymous method.</summary>
        Lambda,

        /// <summary>A local function.</summary>
        LocalFunction,
    }

    /// <summary>Splits a generated method name into the method it was written in and what it is.</summary>
    /// <param name="name">A method name such as <c>&lt;Build&gt;b__0_3</c>.</param>
    /// <param name="outer">The method it was written in, readable (<c>Build</c>; <c>Main</c> for top-level statements).</param>
    /// <param name="detail">The lambda's ordinal, or the local function's name.</param>
    /// <returns>The kind; <see cref="Kind.None"/> when <paramref name="name"/> is not a generated lambda or local function.</returns>
    public static Kind Parse(string name, out string outer, out string detail)
    {
        outer = detail = string.Empty;
        int close = ClosingBracket(name);
        if (close < 2 || close + 3 >= name.Length || name[close + 2] != '_' || name[close + 3] != '_')
        {
            return Kind.None;
        }

        string suffix = name[(close + 4)..];
        switch (name[close + 1])
        {
            case 'b':
                outer = Readable(name[1..close]);
                int underscore = suffix.LastIndexOf('_');
                detail = underscore < 0 ? suffix : suffix[(underscore + 1)..];
                return Kind.Lambda;
            case 'g':
                int bar = suffix.IndexOf('|', StringComparison.Ordinal);
                outer = Readable(name[1..close]);
                detail = bar < 0 ? suffix : suffix[..bar];
                return Kind.LocalFunction;
            default:
                return Kind.None;
        }
    }

    /// <summary>The method a state machine type (<c>&lt;CountAsync&gt;d__3</c>, <c>&lt;&lt;Main&gt;$&gt;d__0</c>) was generated for, as its raw name; null when the name is not of that form.</summary>
    public static string? StateMachineMethod(string typeName)
    {
        int close = ClosingBracket(typeName);
        return close > 1 && typeName.Length > close + 1 && typeName[close + 1] == 'd' ? typeName[1..close] : null;
    }

    /// <summary>Whether a type is one the compiler made (closures, state machines, the lambda cache <c>&lt;&gt;c</c>): its name starts with <c>&lt;</c>.</summary>
    public static bool IsGeneratedType(Type type) => type.Name.StartsWith('<');

    /// <summary>A method name as the programmer knows it: top-level statements' <c>&lt;Main&gt;$</c> is <c>Main</c>.</summary>
    public static string Readable(string methodName) => methodName == "<Main>$" ? "Main" : methodName;

    /// <summary>Finds the '&gt;' that closes the '&lt;' at index 0, so "&lt;&lt;Main&gt;$&gt;d__0" yields the index after "&lt;Main&gt;$".</summary>
    public static int ClosingBracket(string name)
    {
        if (name.Length == 0 || name[0] != '<')
        {
            return -1;
        }

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
}
