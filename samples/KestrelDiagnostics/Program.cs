// KestrelDiagnostics: Kestrel on tracked native buffers, with the diagnostics endpoints and dashboard.
//
//   dotnet run --project samples/KestrelDiagnostics -- --urls http://127.0.0.1:5080
//   then open http://127.0.0.1:5080/debug/buffers/ and call /ok and /leak
using KestrelDiagnostics;

WebApplication app = DiagnosticsApp.Build(args);
app.Run();
