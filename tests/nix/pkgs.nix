# A stand-in for the few parts of nixpkgs that machci's default.nix calls, so tests can build the
# generated expression offline. Argument names are nixpkgs' own (see the README of this folder);
# the patterns are closed, so an argument nixpkgs would not understand fails here too.
{
  hostPython,
  pythonVersion,
  system ? builtins.currentSystem,
}:
let
  sitePackages = "lib/python${pythonVersion}/site-packages";

  fetchurl =
    {
      url,
      name ? baseNameOf url,
      hash ? "",
      sha256 ? "",
    }:
    import <nix/fetchurl.nix> { inherit url name hash sha256; };

  # A setup hook stand-in: only its presence in nativeBuildInputs matters here.
  autoPatchelfHook = derivation {
    name = "auto-patchelf-hook";
    inherit system;
    builder = "/bin/sh";
    args = [ "-c" "echo > $out" ];
  };

  buildPythonPackage =
    {
      pname,
      version,
      src,
      format ? null,
      pyproject ? null,
      build-system ? [ ],
      dependencies ? [ ],
      optional-dependencies ? { },
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      propagatedBuildInputs ? [ ],
      checkInputs ? [ ],
      nativeCheckInputs ? [ ],
      doCheck ? true,
      disabled ? false,
      catchConflicts ? true,
      makeWrapperArgs ? [ ],
      dontWrapPythonPrograms ? false,
      permitUserSite ? false,
      removeBinBytecode ? true,
      strictDeps ? true,
      outputs ? [ "out" ],
      meta ? { },
      passthru ? { },
      pythonImportsCheck ? [ ],
      pythonRelaxDeps ? [ ],
      pythonRemoveDeps ? [ ],
      dontCheckRuntimeDeps ? false,
      patches ? [ ],
      postInstall ? "",
    }:
    # The checks nixpkgs' mk-python-derivation makes on these arguments.
    assert (pyproject != null) -> (format == null);
    let
      format' =
        if pyproject != null then
          (if pyproject then "pyproject" else "other")
        else if format != null then
          format
        else
          throw "${pname} does not configure a `format`. To build with setuptools as before, set `pyproject = true` and `build-system = [ setuptools ]`.`";
      runtime = dependencies ++ propagatedBuildInputs;
      drv = derivation {
        name = "python${pythonVersion}-${pname}-${version}";
        inherit system pname version src sitePackages hostPython;
        builder = hostPython;
        args = [ ./install.py ];
        format = format';
        buildSystem = map (p: "${p}") build-system;
        nativeInputs = map (p: "${p}") nativeBuildInputs;
        libraries = map (p: "${p}") buildInputs;
      };
    in
    if disabled then
      throw "${pname}-${version} not supported for interpreter python${pythonVersion}"
    else
      drv
      // passthru
      // {
        inherit pname version;
        requiredPythonModules = runtime;
      };

  withPackages =
    select:
    let
      roots = select pythonPackages;
      closure = map (item: item.package) (
        builtins.genericClosure {
          startSet = map (p: {
            key = p.outPath;
            package = p;
          }) roots;
          operator =
            item:
            map (d: {
              key = d.outPath;
              package = d;
            }) item.package.requiredPythonModules;
        }
      );
    in
    derivation {
      name = "python${pythonVersion}-env";
      inherit system hostPython sitePackages;
      builder = hostPython;
      args = [ ./env.py ];
      paths = map (p: p.outPath) closure;
      names = map (p: p.pname) closure;
    };

  pythonPackages = {
    inherit buildPythonPackage;
  };

  python = {
    inherit pythonVersion sitePackages withPackages;
    pkgs = pythonPackages;
  };

  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      buildInputs ? [ ],
      nativeBuildInputs ? [ ],
      propagatedBuildInputs ? [ ],
      propagatedNativeBuildInputs ? [ ],
      shellHook ? "",
      ...
    }:
    derivation {
      inherit name system shellHook;
      builder = "/bin/sh";
      args = [ "-c" "echo > $out" ];
      nativeBuildInputs = map (p: "${p}") (packages ++ nativeBuildInputs);
    };

  buildLayeredImage =
    {
      name,
      tag ? null,
      contents ? [ ],
      config ? { },
      architecture ? null,
      created ? "1970-01-01T00:00:01Z",
      mtime ? created,
      maxLayers ? 100,
      layeringPipeline ? null,
      extraCommands ? "",
      fakeRootCommands ? "",
      enableFakechroot ? false,
      fromImage ? null,
      includeNixDB ? false,
      includeStorePaths ? true,
      uid ? 0,
      gid ? 0,
      uname ? "root",
      gname ? "root",
      debug ? false,
      meta ? { },
      passthru ? { },
      compressor ? "gz",
    }:
    assert maxLayers > 1;
    derivation {
      name = "${name}.tar.gz";
      inherit system;
      builder = "/bin/sh";
      args = [ "-c" "printf '%s' \"$imageConfig\" > $out" ];
      imageConfig = builtins.toJSON {
        inherit name tag config;
        contents = map (p: "${p}") contents;
      };
    };
in
{
  inherit fetchurl autoPatchelfHook mkShell;
  stdenv.hostPlatform.system = system;
  python311 = python;
  python312 = python;
  python313 = python;
  pythonManylinuxPackages.manylinux2014 = [ ];
  dockerTools = {
    inherit buildLayeredImage;
  };
}
