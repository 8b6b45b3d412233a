namespace OffHeapTracker.Monitoring;

/// <summary>A frame's method as names only, as <see cref="System.Diagnostics.DiagnosticMethodInfo"/> gives it where there is no reflection metadata (NativeAOT).</summary>
/// <param name="TypeName">The declaring type's full name as <see cref="Type.FullName"/> spells a definition (<c>Ns.Outer`1+&lt;RunAsync&gt;d__3</c>); null for a method without one.</param>
/// <param name="MethodName">The method's simple name.</param>
/// <param name="AssemblyName">The declaring assembly's display name (<c>App, Version=1.0.0.0, ...</c>) or simple name; null when unknown.</param>
internal readonly record struct FrameNames(string? TypeName, string MethodName, string? AssemblyName)
{
    /// <summary>Gets the assembly's simple name: the display name up to its first comma.</summary>
    public string? SimpleAssemblyName => AssemblyName is { } name && name.IndexOf(',', StringComparison.Ordinal) is int comma and >= 0 ? name[..comma] : AssemblyName;

    /// <summary>Gets the outermost type's full name (<c>Ns.Outer`1</c>): nested types belong to it.</summary>
    public string? OutermostTypeName => TypeName is { } name && name.IndexOf('+', StringComparison.Ordinal) is int plus and >= 0 ? name[..plus] : TypeName;

    /// <summary>Gets the innermost type's own name (<c>&lt;RunAsync&gt;d__3</c>), without namespace or outer types.</summary>
    public string? InnermostTypeName => TypeName is not { } name ? null
        : name.LastIndexOf('+') is int plus and >= 0 ? name[(plus + 1)..]
        : SplitNamespace(name).Name;

    /// <summary>Splits a full type name into namespace and name (<c>System.Threading</c>, <c>ThreadPoolWorkQueue</c>).</summary>
    public static (string Namespace, string Name) SplitNamespace(string fullName)
    {
        int dot = fullName.LastIndexOf('.');
        return dot < 0 ? (string.Empty, fullName) : (fullName[..dot], fullName[(dot + 1)..]);
    }
}
