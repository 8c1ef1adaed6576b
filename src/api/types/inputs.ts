/** Input types. Parameters are checked in turns/params.ts (the engine's table), so every error names field, expected and got. */
import { Field, Float, ID, InputType, Int } from "type-graphql";
import { CfgSchedule, PreviewMethod, Task } from "./enums.js";

@InputType("GenerationParamsInput", { description: "Sampling parameters; anything left out takes the model's default." })
export class GenerationParamsInput {
  @Field(() => Int, { nullable: true, description: "MAR iterations." })
  steps?: number;

  @Field(() => Float, { nullable: true, description: "Classifier-free guidance scale (1 = none)." })
  cfg?: number;

  @Field(() => CfgSchedule, { nullable: true })
  cfgSchedule?: CfgSchedule;

  @Field(() => Float, { nullable: true, description: "Scales the per-step diffusion noise." })
  temperature?: number;

  @Field(() => Int, { nullable: true, description: "DDPM steps of the diffusion head per MAR iteration." })
  diffusionSteps?: number;

  @Field(() => Int, { nullable: true, description: "0..2147483647; random when left out, and stored either way." })
  seed?: number;

  @Field(() => Int, { nullable: true, description: "Output side in pixels; one the model supports." })
  resolution?: number;

  @Field(() => Int, { nullable: true, description: "Answer length limit, in tokens, for understanding." })
  maxTokens?: number;

  @Field(() => PreviewMethod, { nullable: true })
  previewMethod?: PreviewMethod;

  @Field(() => Int, { nullable: true, description: "A preview every this many MAR steps." })
  previewEvery?: number;

  @Field(() => Int, { nullable: true, description: "Preview side in pixels." })
  previewSize?: number;
}

@InputType("CreateConversationInput")
export class CreateConversationInput {
  @Field(() => String, { nullable: true, description: "Defaults to \"New conversation\"." })
  title?: string;
}

@InputType("SendMessageInput")
export class SendMessageInput {
  @Field(() => ID)
  conversationId!: string;

  @Field(() => String)
  text!: string;

  @Field(() => [ID], { nullable: true, description: "Image ids from POST /images or from earlier turns." })
  imageIds?: string[];

  @Field(() => Task, { nullable: true, defaultValue: Task.AUTO })
  task?: Task;

  @Field(() => GenerationParamsInput, { nullable: true })
  params?: GenerationParamsInput;
}
